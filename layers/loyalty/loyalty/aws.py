"""boto3 clients, created lazily once per process.

The endpoint comes from boto3's own ``AWS_ENDPOINT_URL`` variable, so the same code talks to
AWS when deployed and to the local moto server in the devstack, with no branch in between.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=2,
    read_timeout=5,
)


@cache
def client(service: str) -> Any:
    """A shared client for ``service`` (dynamodb, sqs, secretsmanager, ...)."""
    return boto3.session.Session().client(service, config=_CONFIG)


def reset() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()
