"""Order takes without a transaction: every interleaving of docs/architecture.md, "Stock: takes
without a transaction (issue 16, `stk`)", hammered with crashes, duplicates, reordering and races.

The oracle: an order's lines are taken once (whatever events, attempts and crashes), a cancelled
order leaves stock as it found it, and a count holds the takes stamped after it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.errors import Conflict, TransientError
from loyalty.models.events import EventType
from loyalty.stock import model
from loyalty.stock.service import ReservationRequest, StockService
from loyalty.stock.store import StockStore
from loyalty.store import table as table_module
from loyalty.store.table import Capacity, serialize
from tests.support import stock as support
from tests.support.races import race

WEB = "WEB-FULFILMENT"
START = 100


class Crash(TransientError):
    """The function died here (a timeout, a throttle): SQS delivers the message again."""


def _seed(sku: str, units: int = START, shards: int = 1) -> None:
    support.apply_message(support.message(support.adjusted(sku, WEB, units, support.at(-60))))
    if shards > 1:
        StockService().configure_sku(sku, None, shards)


def _order(
    oid: str, lines: list[tuple[str, int]], kind: EventType = EventType.ORDER_PLACED, minute: int = 1
) -> str:
    return support.message(support.order(oid, lines, WEB, kind=kind, when=support.at(minute)))


def _on_hand(sku: str) -> int:
    return support.figures(sku, WEB).on_hand


def _check_shards(sku: str) -> None:
    for shard in StockStore().shards(sku, WEB):
        assert shard.on_hand >= 0, shard
        assert shard.available == shard.on_hand - shard.reserved, shard
        tags = {t.tag for t in map(model.Take.parse, shard.journal) if t is not None}
        assert shard.takes == tags, shard  # the guard set is exactly the journal's takes


def _entries(sku: str) -> list[str]:
    """Every take entry of a SKU at WEB, on its shards and in its flushed pages (distinct)."""
    on_shards = [e for s in StockStore().shards(sku, WEB) for e in s.journal]
    pages = [e for p in support.collection(sku, model.JOURNAL_ENTITY) for e in p["entries"]]
    return sorted(set(on_shards) | set(pages))


def _fill(sku: str, prefix: str, orders: int, minute: int = 2) -> None:
    """Other one-unit orders of the same SKU: enough to roll its journal over several times."""
    for i in range(orders):
        support.apply_message(_order(f"{prefix}-{i}", [(sku, 1)], minute=minute))


def _crashing_at(real: Callable[..., Any], at_call: int) -> Callable[..., Any]:
    """``real``, except that its ``at_call``-th call raises Crash."""
    calls = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == at_call:
            raise Crash(f"crashed in {real.__name__}")
        return real(*args, **kwargs)

    return wrapped


@pytest.fixture
def crash_once(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int], None]:
    """``crash_once(method, at_call)``: the store's ``method`` raises Crash on its ``at_call``-th call."""

    def arm(method: str, at_call: int) -> None:
        monkeypatch.setattr(StockStore, method, _crashing_at(getattr(StockStore, method), at_call))

    return arm


# -- the common path -----------------------------------------------------------------------------
def test_an_order_is_one_plain_update_per_line_and_one_put(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two SKUs in stock
    _seed("SKU-A")
    _seed("SKU-B")
    body = _order("W-PLAIN", [("SKU-A", 2), ("SKU-B", 1)])
    service = StockService()
    service.store.prefetch_configs(["SKU-A", "SKU-B"])
    capacity = Capacity()
    monkeypatch.setattr(table_module, "CAPACITY", capacity)
    # When the order is applied (its signals deferred, as inside a queue batch)
    with service.batch([]):
        service.apply(body)
        calls = dict(capacity.calls)
    # Then: one read of its record, one UpdateItem per line, one PutItem; no transaction
    assert calls == {"get_item": 1, "update_item": 2, "put_item": 1}
    assert (_on_hand("SKU-A"), _on_hand("SKU-B")) == (START - 2, START - 1)
    # and a redelivery, and the order's other event, read the record and write nothing
    monkeypatch.setattr(table_module, "CAPACITY", again := Capacity())
    with service.batch([]):
        service.apply(body)
        service.apply(_order("W-PLAIN", [("SKU-A", 2), ("SKU-B", 1)], EventType.ORDER_COMPLETED, 5))
        assert again.calls == {"get_item": 2}
    assert (_on_hand("SKU-A"), _on_hand("SKU-B")) == (START - 2, START - 1)


def test_a_full_shard_stays_under_one_kilobyte(stack: Resolver) -> None:
    # Given a journal full of takes of orders with long ids and several lines
    sku = "SKU-SIZE"
    _seed(sku)
    for i in range(model.JOURNAL_SIZE * 3):
        oid = f"WEB-ORDER-2026-11-30-{uuid.uuid4().hex[:12]}"
        support.apply_message(_order(oid, [(sku, 1), ("SKU-OTHER", 1)], minute=i))
    # Then the shard holds at most JOURNAL_SIZE entries and its item is under 1 KB
    (shard,) = StockStore().shards(sku, WEB)
    assert len(shard.journal) <= model.JOURNAL_SIZE
    item = StockStore().table.get(model.sku_pk(sku), model.shard_sk(WEB, 0))
    assert item is not None
    assert _item_bytes(serialize(item)) < 1024, _item_bytes(serialize(item))


def _item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings in UTF-8, numbers ~ digits/2+1)."""

    def size(value: dict[str, Any]) -> int:
        ((kind, inner),) = value.items()
        if kind == "S":
            return len(inner.encode())
        if kind == "N":
            return len(inner) // 2 + 2
        if kind == "L":
            return 3 + sum(1 + size(v) for v in inner)
        if kind == "SS":
            return sum(len(v.encode()) for v in inner)
        return len(str(inner))

    return sum(len(name) + size(value) for name, value in item.items())


# -- a crash between two lines' takes, and the redelivery ------------------------------------------
@pytest.mark.parametrize("crash", [("take_line", 2), ("open_order", 1), ("put_shortfall", 1)])
def test_a_crash_mid_order_then_the_redelivery_takes_each_line_once(
    stack: Resolver, crash_once: Callable[[str, int], None], crash: tuple[str, int]
) -> None:
    # Given stock of three SKUs (one short) and an order of the three
    for sku in ("SKU-C1", "SKU-C2"):
        _seed(sku)
    _seed("SKU-C3", 1)
    body = _order("W-CRASH", [("SKU-C1", 2), ("SKU-C2", 3), ("SKU-C3", 2)])
    # When the first attempt dies after some of its takes
    crash_once(*crash)
    with pytest.raises(Crash):
        support.apply_message(body)
    assert StockStore().get_order("web", "W-CRASH") is None
    # and SQS delivers it again (twice)
    support.apply_message(body)
    support.apply_message(body)
    # Then each line was taken once, the record lists what each took, and one backorder is there
    assert (_on_hand("SKU-C1"), _on_hand("SKU-C2"), _on_hand("SKU-C3")) == (START - 2, START - 3, 0)
    record = StockStore().get_order("web", "W-CRASH")
    assert record is not None
    assert (record["taken"], record["shortfall"]) == ({"1": 2, "2": 3, "3": 1}, {"3": 1})
    assert [s["units"] for s in support.collection("SKU-C3", model.SHORTFALL_ENTITY)] == [1]
    assert sorted(record["entries"]) == sorted(
        e for sku in ("SKU-C1", "SKU-C2", "SKU-C3") for e in _entries(sku)
    )


def test_a_crash_then_the_orders_other_event_then_the_redelivery(
    stack: Resolver, crash_once: Callable[[str, int], None]
) -> None:
    # Given a web order placed whose first attempt died after its first line
    _seed("SKU-P1")
    _seed("SKU-P2")
    lines = [("SKU-P1", 2), ("SKU-P2", 1)]
    placed = _order("W-PAID", lines, EventType.ORDER_PLACED, 1)
    crash_once("take_line", 2)
    with pytest.raises(Crash):
        support.apply_message(placed)
    # When its completed event arrives first, then the placed one again
    support.apply_message(_order("W-PAID", lines, EventType.ORDER_COMPLETED, 30))
    support.apply_message(placed)
    # Then each line was taken once, the first line with the placed event's take
    assert (_on_hand("SKU-P1"), _on_hand("SKU-P2")) == (START - 2, START - 1)
    record = StockStore().get_order("web", "W-PAID")
    assert record is not None
    first = model.Take.parse(record["entries"][0])
    assert first is not None
    assert first.at == model.stamp(support.at(1))


# -- a redelivery after the journal has rolled past the order's entry ------------------------------
def test_a_take_whose_order_has_no_record_outlives_any_number_of_flushes(
    stack: Resolver, crash_once: Callable[[str, int], None]
) -> None:
    # Given an order whose attempt died after its take, before its record
    sku = "SKU-ROLL"
    _seed(sku)
    body = _order("W-ROLL", [(sku, 4)])
    crash_once("open_order", 1)
    with pytest.raises(Crash):
        support.apply_message(body)
    # When the shard's journal rolls over many times (other orders), as long as a DLQ's retention
    _fill(sku, "W-FILL", model.JOURNAL_SIZE * 4)
    assert len(support.collection(sku, model.JOURNAL_ENTITY)) >= 3
    (shard,) = StockStore().shards(sku, WEB)
    tag = model.take_tag("web", "W-ROLL", "1")
    assert tag in shard.takes  # not flushed: its order has no record
    # and the message comes back (a redelivery, or a redrive from the DLQ)
    support.apply_message(body)
    # Then it was taken once, and its entry is flushed like any other afterwards
    assert _on_hand(sku) == START - 4 - model.JOURNAL_SIZE * 4
    _fill(sku, "W-MORE", model.JOURNAL_SIZE * 2, minute=3)
    assert tag not in StockStore().shards(sku, WEB)[0].takes
    assert _on_hand(sku) == START - 4 - model.JOURNAL_SIZE * 6
    _check_shards(sku)


def test_an_order_committed_long_ago_is_stopped_by_its_record(stack: Resolver) -> None:
    # Given a web order placed, then many orders (its entry long flushed)
    sku = "SKU-OLD"
    _seed(sku)
    lines = [(sku, 5)]
    support.apply_message(_order("W-OLD", lines))
    _fill(sku, "W-FILL", model.JOURNAL_SIZE * 3)
    assert model.take_tag("web", "W-OLD", "1") not in StockStore().shards(sku, WEB)[0].takes
    # When it is paid days later, and the placed event is redelivered
    support.apply_message(_order("W-OLD", lines, EventType.ORDER_COMPLETED, 60 * 24 * 3))
    support.apply_message(_order("W-OLD", lines))
    # Then it is not taken again
    assert _on_hand(sku) == START - 5 - model.JOURNAL_SIZE * 3


@pytest.mark.parametrize("dies", [False, True], ids=["finds-out", "dies-first"])
def test_a_line_taken_again_after_its_entry_left_is_given_back(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch, crash_once: Callable[[str, int], None], dies: bool
) -> None:
    # Given an order committed and its entry flushed
    sku = "SKU-STALE"
    _seed(sku)
    support.apply_message(_order("W-STALE", [(sku, 3)]))
    _fill(sku, "W-FILL", model.JOURNAL_SIZE * 2)
    # When its other event read the record before it existed (the race of a read and a commit)
    # and took the line again
    real, reads = StockStore.get_order, [0]

    def stale_first(self: StockStore, channel: str, order_id: str) -> Any:
        reads[0] += 1
        return None if reads[0] == 1 else real(self, channel, order_id)

    monkeypatch.setattr(StockStore, "get_order", stale_first)
    completed = _order("W-STALE", [(sku, 3)], EventType.ORDER_COMPLETED, 40)
    if not dies:
        # Then its record put finds the record, and it gives the take back at once
        support.apply_message(completed)
        assert _on_hand(sku) == START - 3 - model.JOURNAL_SIZE * 2
        return
    # (or it dies before its record put could tell it)
    crash_once("open_order", 1)
    with pytest.raises(Crash):
        support.apply_message(completed)
    assert _on_hand(sku) == START - 3 - model.JOURNAL_SIZE * 2 - 3
    # Then the flush that would move that second take off the shard gives it back first, once
    _fill(sku, "W-MORE", model.JOURNAL_SIZE * 2, minute=50)
    assert _on_hand(sku) == START - 3 - model.JOURNAL_SIZE * 4
    _fill(sku, "W-AGAIN", model.JOURNAL_SIZE, minute=51)
    assert _on_hand(sku) == START - 3 - model.JOURNAL_SIZE * 5
    undone = [m for m in support.collection(sku, model.MOVE_ENTITY) if m["reason"] == "order_take_undone"]
    assert [m["on_hand_delta"] for m in undone] == [3]


@pytest.mark.parametrize(("before", "after"), [(1, 4), (4, 1), (3, 5)])
def test_a_rebalance_between_a_crash_and_the_redelivery_moves_the_take_to_its_new_home(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch, before: int, after: int
) -> None:
    # Given orders whose attempts died after their takes, on a SKU with `before` shards
    sku = "SKU-REHOME"
    _seed(sku, shards=before)
    bodies = [_order(f"W-RH{i}", [(sku, 1 + i % 2)]) for i in range(6)]
    real = StockStore.open_order
    monkeypatch.setattr(StockStore, "open_order", lambda self, item: _crashing(item))
    for body in bodies:
        with pytest.raises(Crash):
            support.apply_message(body)
    monkeypatch.setattr(StockStore, "open_order", real)
    # When staff change the shard count, then the messages come back
    StockService().configure_sku(sku, None, after)
    for shard in StockStore().shards(sku, WEB):
        assert all(t.home(after) == shard.shard for t in map(model.Take.parse, shard.journal) if t)
    for body in bodies:
        support.apply_message(body)
    # Then each was taken once
    assert _on_hand(sku) == START - sum(1 + i % 2 for i in range(6))
    _check_shards(sku)


# -- the order's other event, duplicates, concurrency ---------------------------------------------
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],  # a race does not shrink: each failure is its own
)
@given(shards=st.sampled_from([1, 3]), seed=st.integers(0, 2**16), crash_at=st.integers(0, 6))
def test_racing_events_and_attempts_of_orders_take_each_line_once(
    stack: Resolver, shards: int, seed: int, crash_at: int
) -> None:
    # Given 6 orders of 2-3 lines over 3 SKUs, each sent placed + completed, twice each
    skus = [f"SKU-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for sku in skus:
        _seed(sku, shards=shards)
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]  # the examples share one table: orders of their own
    spec = {
        f"O-{run}-{i}": [(sku, rng.randint(1, 3)) for sku in rng.sample(skus, rng.randint(2, 3))]
        for i in range(6)
    }
    bodies = [
        _order(oid, lines, kind, 1 + i)
        for i, (oid, lines) in enumerate(spec.items())
        for kind in (EventType.ORDER_PLACED, EventType.ORDER_COMPLETED)
        for _ in range(2)
    ]
    rng.shuffle(bodies)

    # When 6 consumers apply them at once, one consumer dying after a take now and then
    def consume(i: int) -> None:
        for n, body in enumerate(bodies[i::6]):
            service = StockService()
            if (n + i) % 7 == crash_at:
                service.store.open_order = _crashing  # type: ignore[method-assign]
            elif (n + i) % 7 == (crash_at + 3) % 7:
                service.store.take_line = _crashing_at(service.store.take_line, 2)  # type: ignore[method-assign]
            try:
                service.apply(body)
            except Crash:
                StockService().apply(body)  # the redelivery

    results = race(6, consume)
    # Then nothing failed and each order's lines were taken once
    assert not [r for r in results if isinstance(r, Exception)], results
    for sku in skus:
        assert _on_hand(sku) == START - sum(q for lines in spec.values() for s, q in lines if s == sku)
        _check_shards(sku)


def _crashing(item: dict[str, Any]) -> bool:
    raise Crash("died before the record")


# -- a cancellation before or while the order is applied -------------------------------------------
def test_a_cancel_landing_between_the_takes_and_the_record_gives_the_takes_back(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an order whose takes are done when its cancel lands (the cancel finds no record)
    _seed("SKU-X1")
    _seed("SKU-X2")
    real = StockStore.open_order

    def cancel_first(self: StockStore, item: dict[str, Any]) -> bool:
        if item["status"] == "committed":
            support.apply_message(support.message(support.cancel("W-CXL", when=support.at(2))))
        return real(self, item)

    monkeypatch.setattr(StockStore, "open_order", cancel_first)
    # When the order is applied
    support.apply_message(_order("W-CXL", [("SKU-X1", 3), ("SKU-X2", 4)]))
    monkeypatch.setattr(StockStore, "open_order", real)
    # Then the cancel's tombstone stands and what the order took is back, once
    record = StockStore().get_order("web", "W-CXL")
    assert record is not None
    assert record["status"] == "cancelled"
    assert (_on_hand("SKU-X1"), _on_hand("SKU-X2")) == (START, START)
    # and neither a redelivery, nor the other event, nor the cancel again changes anything
    support.apply_message(_order("W-CXL", [("SKU-X1", 3), ("SKU-X2", 4)]))
    support.apply_message(_order("W-CXL", [("SKU-X1", 3), ("SKU-X2", 4)], EventType.ORDER_COMPLETED, 9))
    support.apply_message(support.message(support.cancel("W-CXL", when=support.at(2))))
    assert (_on_hand("SKU-X1"), _on_hand("SKU-X2")) == (START, START)


def test_a_crashed_order_then_its_cancel_then_the_redelivery(
    stack: Resolver, crash_once: Callable[[str, int], None]
) -> None:
    # Given an order that died after its first line, and its cancel (which finds no record)
    _seed("SKU-Y1")
    _seed("SKU-Y2")
    body = _order("W-CY", [("SKU-Y1", 2), ("SKU-Y2", 2)])
    crash_once("take_line", 2)
    with pytest.raises(Crash):
        support.apply_message(body)
    support.apply_message(support.message(support.cancel("W-CY", when=support.at(5))))
    assert _on_hand("SKU-Y1") == START - 2
    # When the order comes back (twice)
    support.apply_message(body)
    support.apply_message(body)
    # Then its partial take is given back, once, and nothing else is taken
    assert (_on_hand("SKU-Y1"), _on_hand("SKU-Y2")) == (START, START)
    # and the given-back entry leaves its shard like any other
    _fill("SKU-Y1", "W-FILL", model.JOURNAL_SIZE * 2)
    assert model.take_tag("web", "W-CY", "1") not in StockStore().shards("SKU-Y1", WEB)[0].takes
    assert _on_hand("SKU-Y1") == START - model.JOURNAL_SIZE * 2


def test_orders_racing_their_cancels_leave_stock_as_they_found_it(stack: Resolver) -> None:
    # Given 10 orders of two SKUs, each with its cancel, placed and completed, all sent twice
    _seed("SKU-Z1", shards=2)
    _seed("SKU-Z2")
    bodies = []
    for i in range(10):
        lines = [("SKU-Z1", 1 + i % 3), ("SKU-Z2", 2)]
        bodies += [_order(f"W-Z{i}", lines), _order(f"W-Z{i}", lines, EventType.ORDER_COMPLETED, 3)]
        bodies += [support.message(support.cancel(f"W-Z{i}", when=support.at(2)))]
    bodies *= 2
    random.Random(3).shuffle(bodies)
    # When 8 consumers apply them at once
    results = race(8, lambda i: [support.apply_message(b) for b in bodies[i::8]])
    # Then every order is cancelled, and stock is where it started
    assert not [r for r in results if isinstance(r, Exception)]
    assert (_on_hand("SKU-Z1"), _on_hand("SKU-Z2")) == (START, START)
    for i in range(10):
        record = StockStore().get_order("web", f"W-Z{i}")
        assert record is not None
        assert record["status"] == "cancelled"


# -- late counts replaying the journal ------------------------------------------------------------
def test_a_count_keeps_the_takes_of_an_order_in_flight_and_counts_each_entry_once(
    stack: Resolver, crash_once: Callable[[str, int], None]
) -> None:
    # Given an order stamped at minute 10 whose attempt died before its record
    sku = "SKU-COUNT"
    _seed(sku)
    body = _order("W-FLIGHT", [(sku, 6)], minute=10)
    crash_once("open_order", 1)
    with pytest.raises(Crash):
        support.apply_message(body)
    # and a page that duplicates what the shard holds (a flush that died between its two writes)
    _fill(sku, "W-AFTER", 3, minute=30)
    (shard,) = StockStore().shards(sku, WEB)
    page = StockStore()._journal_page(sku, shard, list(shard.journal))
    StockStore().table.put(page)
    # When a count taken at minute 20 arrives
    support.apply_message(support.message(support.counted(sku, WEB, 50, support.at(20))))
    # Then on hand is the count less the 3 takes after it, each once; the take in flight stays
    assert _on_hand(sku) == 50 - 3
    assert model.take_tag("web", "W-FLIGHT", "1") in StockStore().shards(sku, WEB)[0].takes
    # and its redelivery finds it there: it is inside the count, not taken again
    support.apply_message(body)
    assert _on_hand(sku) == 50 - 3
    record = StockStore().get_order("web", "W-FLIGHT")
    assert record is not None
    assert record["taken"] == {"1": 6}
    _check_shards(sku)


def test_a_line_stamped_before_a_count_is_inside_it_for_every_event_of_the_order(stack: Resolver) -> None:
    # Given a count at minute 20, and an order placed at minute 10 (so inside the count)
    sku = "SKU-ABSORBED"
    _seed(sku)
    support.apply_message(support.message(support.counted(sku, WEB, 40, support.at(20))))
    lines = [(sku, 2)]
    support.apply_message(_order("W-IN", lines, minute=10))
    # When its completed event (stamped after the count) races a redelivery of the placed one
    race(2, lambda i: support.apply_message(_order("W-IN", lines, EventType.ORDER_COMPLETED, 25 + i)))
    # Then nothing is taken: the first event's take (none) is the order's
    assert _on_hand(sku) == 40
    record = StockStore().get_order("web", "W-IN")
    assert record is not None
    assert (record["taken"], record["shortfall"]) == ({"1": 0}, {})


# -- reservations and their confirmation ----------------------------------------------------------
def test_orders_racing_reservations_and_collections_never_oversell(stack: Resolver) -> None:
    # Given 20 units at a store, a customer, and orders, reservations and collections racing
    sku = "SKU-RES"
    store_id = "MAD-SOL"
    support.profile("c_res")
    support.apply_message(support.message(support.adjusted(sku, store_id, 20, support.at(-60))))
    made: list[str] = []

    def work(i: int) -> Any:
        if i % 3 == 0:
            request = ReservationRequest(customer_id="c_res", sku=sku, quantity=2, location_id=store_id)
            item, _ = StockService().create_reservation(request, f"k-{i}")
            made.append(item["reservation_id"])
            return StockService().collect_reservation(item["reservation_id"]) if i % 2 else item
        event = support.pos_sale(f"T-{i}", sku, 2, store_id, support.at(1))
        return [support.apply_message(support.message(event)) for _ in range(2)]

    results = race(15, work)
    # Then: never negative, reserved = the holds still active, and every unit is accounted for
    refused = [r for r in results if isinstance(r, Conflict) and r.code == "insufficient_stock"]
    assert not [r for r in results if isinstance(r, Exception) and r not in refused]
    stock = support.figures(sku, store_id)
    assert stock.on_hand >= 0
    assert stock.available >= 0
    store = StockStore()
    held = [store.get_reservation(rid) for rid in made]
    assert stock.reserved == sum(r["quantity"] for r in held if r and r["status"] in {"held", "ready"})
    collected = sum(r["quantity"] for r in held if r and r["status"] == "collected")
    sold = sum(
        r["taken"]["1"] for i in range(15) if i % 3 and (r := store.get_order("pos", f"T-{i}")) is not None
    )
    assert stock.on_hand == 20 - collected - sold


# -- an earlier version's record ------------------------------------------------------------------
def test_a_committing_record_left_by_the_earlier_version_is_resumed_line_by_line(stack: Resolver) -> None:
    # Given the record an earlier version left for a large order, `committing`
    _seed("SKU-L1")
    _seed("SKU-L2")
    event = support.order("W-LEGACY", [("SKU-L1", 2), ("SKU-L2", 3)], WEB, when=support.at(1))
    pk, sk = model.order_key("web", "W-LEGACY")
    lines = [
        {"line_id": "1", "sku": "SKU-L1", "quantity": 2},
        {"line_id": "2", "sku": "SKU-L2", "quantity": 3},
    ]
    StockStore().table.put(
        {
            "pk": pk,
            "sk": sk,
            "entity": model.ORDER_ENTITY,
            "channel": "web",
            "order_id": "W-LEGACY",
            "status": "committing",
            "event_id": event.event_id,
            "at": model.stamp(support.at(1)),
            "location_id": WEB,
            "fulfilment": "ship",
            "lines": lines,
        }
    )
    # When its event is redelivered (twice)
    support.apply_message(support.message(event))
    support.apply_message(support.message(event))
    # Then each line is taken once, with its MOVE marker, and the record is committed
    assert (_on_hand("SKU-L1"), _on_hand("SKU-L2")) == (START - 2, START - 3)
    record = StockStore().get_order("web", "W-LEGACY")
    assert record is not None
    assert (record["status"], record["taken"]) == ("committed", {"1": 2, "2": 3})
