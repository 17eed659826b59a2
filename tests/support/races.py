"""Run the same work on several threads released at once (races against the emulated table)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` on ``n`` threads started together; each result, or the exception it raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as err:  # noqa: BLE001 - the result IS the error
            results[i] = err

    # each DynamoDB request is atomic, as in DynamoDB: devstack.moto_patches (installed by conftest)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
