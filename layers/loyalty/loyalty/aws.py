"""boto3 clients, created lazily once per process.

The endpoint comes from boto3's own ``AWS_ENDPOINT_URL`` variable, so the same code talks to
AWS when deployed and to the local moto server in the devstack, with no branch in between.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=2,
    read_timeout=5,
)
_clients: dict[str, Any] = {}
# one creation per service even when a request's first calls run in parallel (a thread pool):
# each creation costs about a third of a cold start's CPU, and threads racing past an empty
# cache would each build their own
_creating = threading.Lock()


def client(service: str) -> Any:
    """A shared client for ``service`` (dynamodb, sqs, secretsmanager, ...)."""
    found = _clients.get(service)
    if found is None:
        with _creating:
            found = _clients.get(service)
            if found is None:
                found = _clients[service] = boto3.session.Session().client(service, config=_CONFIG)
    return found


def reset() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    with _creating:
        _clients.clear()
