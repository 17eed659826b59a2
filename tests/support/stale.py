"""A moto double for eventually consistent reads: chosen items read stale, or not at all.

moto answers every read strongly consistent. ``stale_reads(items)`` makes every eventually
consistent GetItem / BatchGetItem (``ConsistentRead`` false or absent) of the given keys return the
given stale item instead (``None``: the item reads as missing, as it does before replication
reaches the replica). Consistent reads and writes see the table as it is. ``StaleReads.reads``
counts the reads of each kind and ``StaleReads.consistent`` the consistent reads of each stale key,
so a test can also show that a consistent retry happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from loyalty.store.table import Item, Table, deserialize, serialize

Key = tuple[str, str]


class StaleReads:
    """What the double serves stale, and how many reads it saw (``(op, consistent)`` -> count)."""

    def __init__(self, items: Mapping[Key, Item | None]) -> None:
        self.items: dict[Key, Item | None] = dict(items)
        self.reads: Counter[tuple[str, bool]] = Counter()
        #: how many times each stale key was read consistently (the retries the guard forced)
        self.consistent: Counter[Key] = Counter()

    def _key(self, key: Mapping[str, Any]) -> Key:
        k = deserialize(key)
        return str(k["pk"]), str(k["sk"])

    def get_item(self, kwargs: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        key = self._key(kwargs["Key"])
        if key not in self.items:
            return response
        stale = self.items[key]
        out = {k: v for k, v in response.items() if k != "Item"}
        return out if stale is None else {**out, "Item": serialize(stale)}

    def count_consistent(self, op: str, kwargs: dict[str, Any]) -> None:
        if op == "get_item":
            keys = [self._key(kwargs["Key"])]
        else:
            keys = [self._key(k) for r in kwargs["RequestItems"].values() for k in r["Keys"]]
        self.consistent.update(k for k in keys if k in self.items)

    def batch_get_item(self, kwargs: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[Any]] = {}
        for name, found in response.get("Responses", {}).items():
            asked = [self._key(k) for k in kwargs["RequestItems"].get(name, {}).get("Keys", [])]
            fresh = [i for i in found if self._key(i) not in self.items]
            stale = [serialize(s) for k in asked if (s := self.items.get(k)) is not None]
            responses[name] = fresh + stale
        return {**response, "Responses": responses}


def _consistent(op: str, kwargs: Mapping[str, Any]) -> bool:
    if op == "batch_get_item":
        return all(bool(r.get("ConsistentRead")) for r in kwargs["RequestItems"].values())
    return bool(kwargs.get("ConsistentRead"))


@contextmanager
def stale_reads(monkeypatch: pytest.MonkeyPatch, items: Mapping[Key, Item | None]) -> Iterator[StaleReads]:
    """Serve ``items`` (key -> stale item, or None for missing) to every eventually consistent read."""
    double = StaleReads(items)
    real = Table._call

    def call(self: Table, op: str, **kwargs: Any) -> Any:
        response = real(self, op, **kwargs)
        if op in ("get_item", "batch_get_item"):
            consistent = _consistent(op, kwargs)
            double.reads[(op, consistent)] += 1
            if consistent:
                double.count_consistent(op, kwargs)
            if not consistent:
                response = getattr(double, op)(kwargs, response)
        return response

    with monkeypatch.context() as patch:
        patch.setattr(Table, "_call", call)
        yield double
