"""Make moto's in-process DynamoDB serialise writes, as DynamoDB does, for threaded tests.

moto 5.2.5 runs ``transact_write_items`` without a lock and rolls a cancelled transaction
back by restoring a deep copy of the WHOLE table taken before it started: with threads, a
cancelled transaction can erase writes another thread committed meanwhile (a lost update
DynamoDB never produces). Tests and benchmarks that race writers wrap the backend's item
operations in one re-entrant lock, so each call is atomic, as every DynamoDB write is.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_OPERATIONS = ("put_item", "get_item", "query", "update_item", "delete_item", "transact_write_items")


def _locked(method: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return call


@contextmanager
def serialised_dynamodb() -> Iterator[None]:
    """Within the block, every moto DynamoDB item operation runs under one lock."""
    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in _OPERATIONS}
    try:
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, _locked(method, lock))
        yield
    finally:
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, method)
