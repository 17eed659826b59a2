"""The one retry loop of the domain: optimistic writes that lose a race read again and retry.

An attempt raises ``Again`` (or one of the exceptions named in ``on``) when what it read changed
before it could write; after ``attempts`` tries the loop raises ``exhausted`` (a
``TransientError`` by default, so a batch record fails and is redelivered, an API answers 503).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from loyalty.errors import TransientError
from loyalty.observability import logger

MAX_BACKOFF_S = 0.05


class Again(Exception):
    """What an attempt read changed before it could write: read again."""


def backoff(attempt: int) -> None:
    """Full jitter, capped low: the contention is between a few writers of one item."""
    time.sleep(random.uniform(0, min(MAX_BACKOFF_S, 0.002 * (2**attempt))))  # noqa: S311 - jitter, not crypto


def retry[T](
    attempt: Callable[[int], T],
    *,
    attempts: int,
    what: str,
    on: type[Exception] | tuple[type[Exception], ...] = Again,
    exhausted: Exception | None = None,
) -> T:
    """``attempt(n)`` until it returns, at most ``attempts`` times while it raises one of ``on``."""
    for n in range(attempts):
        try:
            return attempt(n)
        except on as err:
            logger.debug("write raced, reading again", extra={"what": what, "attempt": n, "error": str(err)})
            backoff(n)
    raise exhausted or TransientError(f"{what} kept changing; retry later")


__all__ = ["Again", "backoff", "retry"]
