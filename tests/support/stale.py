"""One moto double for eventually consistent reads: chosen items read stale, or not at all.

moto answers every read strongly consistent. ``StaleReads`` makes every eventually consistent
``Table.get`` / ``Table.query`` / ``Table.batch_get`` answer the items it holds stale as they were
(an item it holds as absent reads as missing, as it does before replication reaches the replica);
consistent reads, index queries and every other item see the table as it is. Two ways to say what
is stale:

- ``stale_reads(monkeypatch, {key: item or None})``: the given keys, with the given stale items;
- ``StaleReads.partition(monkeypatch, pk, prefixes)``: the items of one partition whose sort key
  starts with one of ``prefixes``, as they are when the double is made (``freeze()`` again later);
  items written after that read as missing.

``stale_reads`` counts the eventually consistent reads that met a stale key; ``consistent`` counts
the consistent reads of each stale key, so a test can show that a consistent retry happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from loyalty.store.table import Item, Table

Key = tuple[str, str]


class StaleReads:
    """What eventually consistent reads see: ``is_stale(key)`` keys answer from ``served``."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        is_stale: Callable[[Key], bool],
        served: Mapping[Key, Item] | None = None,
        partitions: frozenset[str] = frozenset(),
    ) -> None:
        self.is_stale = is_stale
        #: the partitions holding stale items: an eventually consistent query of one counts
        self.partitions = partitions
        self.served: dict[Key, Item] = dict(served or {})
        self.stale_reads = 0
        #: how many times each stale key was read consistently (the retries a guard forced)
        self.consistent: Counter[Key] = Counter()
        self._refresh: Callable[[], dict[Key, Item]] | None = None
        real_get, real_query, real_batch = Table.get, Table.query, Table.batch_get

        def get(table: Table, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
            if not self.is_stale((pk, sk)):
                return real_get(table, pk, sk, consistent=consistent)
            if consistent:
                self.consistent[(pk, sk)] += 1
                return real_get(table, pk, sk, consistent=True)
            self.stale_reads += 1
            return self.served.get((pk, sk))

        def query(table: Table, pk: str, **kw: Any) -> tuple[list[Item], Item | None]:
            items, last = real_query(table, pk, **kw)
            if kw.get("index"):
                return items, last
            if kw.get("consistent"):
                self.consistent.update((pk, str(i["sk"])) for i in items if self.is_stale((pk, str(i["sk"]))))
                return items, last
            prefix = kw.get("sk_prefix") or ""
            low, high = kw.get("sk_between") or (prefix, prefix + "\uffff")
            fresh = [i for i in items if not self.is_stale((pk, str(i["sk"])))]
            old = [i for (p, sk), i in self.served.items() if p == pk and low <= sk <= high]
            if pk in self.partitions:
                self.stale_reads += 1
            return sorted(fresh + old, key=lambda i: str(i["sk"])), last

        def batch_get(table: Table, keys: Sequence[Key], *, consistent: bool = True) -> list[Item]:
            items = real_batch(table, keys, consistent=consistent)
            stale = [k for k in keys if self.is_stale(k)]
            if consistent:
                self.consistent.update(stale)
                return items
            if stale:
                self.stale_reads += 1
            fresh = [i for i in items if not self.is_stale((str(i["pk"]), str(i["sk"])))]
            return fresh + [self.served[k] for k in dict.fromkeys(stale) if k in self.served]

        monkeypatch.setattr(Table, "get", get)
        monkeypatch.setattr(Table, "query", query)
        monkeypatch.setattr(Table, "batch_get", batch_get)

    @classmethod
    def partition(
        cls, monkeypatch: pytest.MonkeyPatch, pk: str, prefixes: tuple[str, ...] = ("",)
    ) -> StaleReads:
        """The items of ``pk`` under ``prefixes`` answer as they are now (until ``freeze()``)."""

        def current() -> dict[Key, Item]:
            return {
                (pk, str(i["sk"])): i
                for i in Table().query_all(pk, consistent=True)
                if str(i["sk"]).startswith(prefixes)
            }

        double = cls(
            monkeypatch,
            lambda key: key[0] == pk and key[1].startswith(prefixes),
            current(),
            frozenset({pk}),
        )
        double._refresh = current
        return double

    def freeze(self) -> None:
        """From now on, a partition's stale items answer as they are at this instant."""
        assert self._refresh is not None, "freeze() is for StaleReads.partition"
        self.served = self._refresh()


@contextmanager
def stale_reads(monkeypatch: pytest.MonkeyPatch, items: Mapping[Key, Item | None]) -> Iterator[StaleReads]:
    """Serve ``items`` (key -> stale item, or None for missing) to every eventually consistent read."""
    with monkeypatch.context() as patch:
        yield StaleReads(
            patch,
            lambda key: key in items,
            {k: v for k, v in items.items() if v is not None},
            frozenset(pk for pk, _ in items),
        )
