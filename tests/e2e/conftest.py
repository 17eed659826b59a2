"""The local stack for end-to-end tests: one per session, on free ports, torn down after e2e.

``local_stack`` is a started ``devstack.stack.LocalStack``: moto as a real HTTP server, the
template's functions in warm worker subprocesses, pollers and the front door. Helpers:
``post_webhook(channel, document)``, ``api(method, path, json=None, staff=True)``,
``wait_quiet(timeout=60)``, ``sqs`` / ``dynamodb`` clients, ``table_name``, ``queue_url(id)``,
``invoker.history`` (every invocation) and ``invoker.inject_faults(function, times)``.
Isolation: each test builds its payloads with the ``uid`` fixture (new delivery ids, new
identifiers), so tests never see each other's events or customers.

Failed SQS messages are retried at once (``retry_delay_s=0``) so redrive to a DLQ takes
milliseconds; schedules only run on demand; the console log is ``<tmp>/console.log``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import LocalStack
from tests.support.stacks import session_stack, stop_after_folder

E2E_DIR = Path(__file__).resolve().parent
_started: list[LocalStack] = []


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with session_stack(tmp_path_factory.mktemp("devstack"), _started) as stack:
        stack.wait_quiet(timeout=60)
        yield stack


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the stack as soon as the last e2e test is done: later (unit) tests use in-process
    moto, whose mock would otherwise intercept the running stack's traffic and reset its state."""
    stop_after_folder(E2E_DIR, _started, nextitem, LocalStack.stop)


@pytest.fixture
def uid() -> str:
    """A fresh id for this test's deliveries and identifiers."""
    return uuid.uuid4().hex[:12]
