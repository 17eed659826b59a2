"""One local stack per test session (e2e, browser): started on first use, stopped when the last test
of its folder is done, so in-process moto (unit tests) and the other folder's stack can run after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.runtime import Console
from devstack.stack import LocalStack, StackOptions
from loyalty.customers import profile_key


@contextmanager
def session_stack(
    logs: Path, started: list[LocalStack], stop: Callable[[LocalStack], None] = LocalStack.stop
) -> Iterator[LocalStack]:
    """A started stack on free ports (failed messages retried at once, schedules on demand, its
    console log in ``logs``), listed in ``started`` while it runs; stopped by ``stop`` after."""
    console = Console((logs / "console.log").open("w"))
    stack = LocalStack(
        StackOptions(port=0, retry_delay_s=0, ttl_interval_s=3600, schedules=False, log_dir=logs),
        console=console,
    )
    stack.start()
    started.append(stack)
    try:
        yield stack
    finally:
        if started and started[-1] is stack:
            stop(started.pop())
        console.out.close()


def stop_after_folder(
    folder: Path, started: list[LocalStack], nextitem: pytest.Item | None, stop: Callable[[LocalStack], None]
) -> None:
    """Stop the folder's stack as soon as the next test is outside ``folder`` (or none is left)."""
    if started and (nextitem is None or folder not in Path(str(nextitem.path)).parents):
        stop(started.pop())


def seed_profile(stack: LocalStack, customer_id: str) -> None:
    """A bare customer profile written straight to the stack's table (as if identity made it)."""
    pk, sk = profile_key(customer_id)
    stack.dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            k: {"S": v}
            for k, v in {"pk": pk, "sk": sk, "entity": "profile", "customer_id": customer_id}.items()
        },
    )
