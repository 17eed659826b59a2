"""Orders in ONE transaction: the STKORD record is the only guard, the shard journal feeds counts.

Hammers the mechanism that replaced the per-line MOVE markers of order takes with duplicates,
reordering and concurrency, and checks counts against an exact oracle: the on hand of a location
is the latest count plus the takes of the orders stamped after it (each order once).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.models.events import EventType
from loyalty.stock import model
from loyalty.stock.service import StockService
from loyalty.stock.store import StockStore
from tests.support import stock as support
from tests.support.races import race

WEB = "WEB-FULFILMENT"
START = 1000


def _orders(sku: str, spec: list[tuple[int, int]]) -> list[str]:
    """A placed and a completed message per (minute, units) order of ``sku``, each twice.

    Both events of an order carry the same time: the take is stamped with the first to arrive.
    """
    bodies = []
    for i, (minute, units) in enumerate(spec):
        oid = f"O-{sku}-{i}"
        for kind in (EventType.ORDER_PLACED, EventType.ORDER_COMPLETED):
            event = support.order(oid, [(sku, units)], WEB, kind=kind, when=support.at(minute))
            bodies += [support.message(event)] * 2
    return bodies


def _expected(spec: list[tuple[int, int]], counts: list[tuple[int, int]]) -> int:
    """The oracle: the latest count (START at minute -60 without one) minus the takes after it."""
    minute, on_hand = max(counts, default=(-60, START))
    return on_hand - sum(units for at, units in spec if at > minute)


def _seed(sku: str, shards: int = 1) -> None:
    support.apply_message(support.message(support.adjusted(sku, WEB, START, support.at(-60))))
    if shards > 1:
        StockService().configure_sku(sku, None, shards)


def _check_shards(sku: str) -> None:
    for shard in StockStore().shards(sku, WEB):
        assert shard.on_hand >= 0
        assert shard.available == shard.on_hand - shard.reserved
        assert len(shard.journal) <= model.JOURNAL_SIZE


orders = st.lists(st.tuples(st.integers(0, 90), st.integers(1, 4)), min_size=1, max_size=12)
count_list = st.lists(
    st.tuples(st.integers(0, 90), st.integers(200, 400)), max_size=2, unique_by=lambda c: c[0]
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=orders, counts=count_list, shards=st.sampled_from([1, 3]), seed=st.integers(0, 2**16))
def test_orders_and_late_counts_in_any_order_match_the_oracle(
    stack: Resolver, spec: list[tuple[int, int]], counts: list[tuple[int, int]], shards: int, seed: int
) -> None:
    # Given stock, and orders each delivered placed + completed, twice each, and counts
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    _seed(sku, shards)
    bodies = _orders(sku, spec)
    bodies += [support.message(support.counted(sku, WEB, q, support.at(m))) for m, q in counts]
    # When they arrive in any order
    random.Random(seed).shuffle(bodies)
    for body in bodies:
        support.apply_message(body)
    # Then every order was taken once and every count holds the takes after it
    assert support.figures(sku, WEB).on_hand == _expected(spec, counts)
    _check_shards(sku)


def test_racing_duplicates_of_orders_and_a_count_take_each_order_once(stack: Resolver) -> None:
    # Given 24 orders (more than a shard's journal holds), each sent placed + completed, twice
    sku = "SKU-RACE-ORDERS"
    _seed(sku, 3)
    spec = [(minute, 1 + minute % 3) for minute in range(1, 25)]
    bodies = [*_orders(sku, spec), support.message(support.counted(sku, WEB, 300, support.at(12)))]
    random.Random(16).shuffle(bodies)
    # When 8 consumers apply them all at once
    results = race(8, lambda i: [support.apply_message(b) for b in bodies[i::8]])
    # Then nothing failed, each order was taken once, and the count kept the takes after it
    assert not [r for r in results if isinstance(r, Exception)]
    assert support.figures(sku, WEB).on_hand == _expected(spec, [(12, 300)])
    _check_shards(sku)


def test_a_full_journal_is_flushed_and_a_late_count_still_finds_every_take(stack: Resolver) -> None:
    # Given 20 one-unit sales, in order (a journal holds JOURNAL_SIZE takes)
    sku = "SKU-BUSY"
    _seed(sku)
    spec = [(minute, 1) for minute in range(10, 30)]
    for body in _orders(sku, spec):
        support.apply_message(body)
    pages = support.collection(sku, model.JOURNAL_ENTITY)
    assert sum(len(p["entries"]) for p in pages) + len(StockStore().shards(sku, WEB)[0].journal) == 20
    moves = support.collection(sku, model.MOVE_ENTITY)
    assert [m["reason"] for m in moves] == ["receipt"]  # the seed's: order takes write no MOVE marker
    # When a count taken at minute 15 arrives (and then a sale stamped before it)
    support.apply_message(support.message(support.counted(sku, WEB, 50, support.at(15))))
    support.apply_message(support.message(support.pos_sale("T-OLD", sku, 3, WEB, support.at(14))))
    # Then on hand is the count less the 14 sales after it; the older sale is inside the count
    assert support.figures(sku, WEB).on_hand == 50 - 14
    record = StockStore().get_order("pos", "T-OLD")
    assert record is not None
    assert (record["status"], record["taken"], record["shortfall"]) == ("committed", {"1": 0}, {})


def test_one_order_writes_its_record_and_its_shards_in_one_transaction(stack: Resolver) -> None:
    # Given two SKUs in stock and an order of both, one line short
    _seed("SKU-A")
    support.apply_message(support.message(support.adjusted("SKU-B", WEB, 2, support.at(-60))))
    event = support.order("W-TX", [("SKU-A", 3), ("SKU-B", 5)], WEB, when=support.at(1))
    # When it is applied
    touched = support.apply_message(support.message(event))
    # Then the record says what each line took and lacked, and the shortfall is recorded
    assert touched == {("SKU-A", WEB), ("SKU-B", WEB)}
    record = StockStore().get_order("web", "W-TX")
    assert record is not None
    assert (record["taken"], record["shortfall"]) == ({"1": 3, "2": 2}, {"2": 3})
    assert [s["units"] for s in support.collection("SKU-B", model.SHORTFALL_ENTITY)] == [3]
    assert (support.figures("SKU-A", WEB).on_hand, support.figures("SKU-B", WEB).on_hand) == (997, 0)
    # and a cancel restores exactly that
    support.apply_message(support.message(support.cancel("W-TX", when=support.at(2))))
    assert (support.figures("SKU-A", WEB).on_hand, support.figures("SKU-B", WEB).on_hand) == (1000, 2)


def test_an_order_too_large_for_one_transaction_is_committed_line_by_line(stack: Resolver) -> None:
    # Given an order of 120 SKUs (a transaction holds 100 writes), some of them twice
    skus = [f"SKU-L{i:03d}" for i in range(120)]
    for sku in skus[:5]:
        _seed(sku)
    lines = [(sku, 1) for sku in skus] + [(skus[0], 2)]
    event = support.order("W-BIG", lines, WEB, when=support.at(1))
    # When it arrives twice
    for _ in range(2):
        support.apply_message(support.message(event))
    # Then it is committed once, each line with its own marker
    record: dict[str, Any] | None = StockStore().get_order("web", "W-BIG")
    assert record is not None
    assert record["status"] == "committed"
    assert support.figures(skus[0], WEB).on_hand == START - 3
    assert support.figures(skus[4], WEB).on_hand == START - 1
    assert record["shortfall"]["6"] == 1
