"""Fixtures: fake credentials, moto with the template's own resources, contexts, events."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "OmnichannelLoyaltyTest",
        "POWERTOOLS_SERVICE_NAME": "tests",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
# the local stack's workers record their AWS calls here (tests/unit/test_permissions.py checks them)
os.environ.setdefault("DEVSTACK_CALL_LOG", tempfile.mkdtemp(prefix="aws-calls-"))

from moto import mock_aws

from devstack import moto_patches
from devstack.provision import function_env, provision
from devstack.template import Resolver, load, resources_of
from loyalty import aws
from loyalty.settings import get_settings
from tests.support.lambdas import LambdaContext

# DynamoDB semantics the emulator lacks: atomic requests, O(items) transactions (see the module)
moto_patches.install()

TEMPLATE = load()


def _all_function_env(resolver: Resolver) -> dict[str, str]:
    """Every function's environment merged: a unit test may call any function's code."""
    env: dict[str, str] = {}
    for logical in resources_of(TEMPLATE, "AWS::Serverless::Function"):
        for key, value in function_env(resolver, logical).items():
            if key != "POWERTOOLS_SERVICE_NAME":
                env[key] = value
    return env


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Resolver]:
    """moto in process with the template's table, queues and secrets; env set as Lambda would."""
    with mock_aws():
        aws.reset()
        resolver = provision(template=TEMPLATE)
        for key, value in _all_function_env(resolver).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        _clear_secret_cache()
        yield resolver
        get_settings.cache_clear()
        aws.reset()
        _clear_secret_cache()


def _clear_secret_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def sqs(stack: Resolver) -> Any:
    return aws.client("sqs")


def drain(sqs_client: Any, url: str, max_messages: int = 1000) -> list[dict[str, Any]]:
    """Receive (and delete) every visible message of a queue."""
    out: list[dict[str, Any]] = []
    while len(out) < max_messages:
        resp = sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        msgs = resp.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            sqs_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out.extend(msgs)
    return out


@pytest.fixture
def daytime(monkeypatch: pytest.MonkeyPatch, stack: Resolver) -> None:
    """No quiet hours (notify): tests that run at whatever time the clock says."""
    monkeypatch.setenv("QUIET_HOURS_START", "0")
    monkeypatch.setenv("QUIET_HOURS_END", "0")
    get_settings.cache_clear()


@pytest.fixture
def sample_issuer(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> str:
    """The staff pool of the sample events under events/api (their tokens' issuer) as STAFF_ISSUER."""
    from tests.support.lambdas import SAMPLE_STAFF_ISSUER

    monkeypatch.setenv("STAFF_ISSUER", SAMPLE_STAFF_ISSUER)
    get_settings.cache_clear()
    return SAMPLE_STAFF_ISSUER


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The permission check runs last: it checks the AWS calls every other test recorded."""
    last = [i for i in items if i.name == "test_every_recorded_call_is_allowed"]
    items[:] = [i for i in items if i not in last] + last
