"""Invariants under any interleaving: never negative, never oversold, reserved = active holds."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.errors import Conflict
from loyalty.stock import model
from loyalty.stock.service import ReservationRequest, StockService
from loyalty.stock.store import StockStore
from tests.support import stock as support
from tests.support.races import race

STORE = "MAD-SOL"
CUSTOMER = "c_invariants"

minutes = st.integers(min_value=0, max_value=120)
units = st.integers(min_value=1, max_value=6)
ops = st.one_of(
    st.tuples(st.just("sale"), units, minutes),
    st.tuples(st.just("order"), units, minutes),
    st.tuples(st.just("cancel"), st.integers(0, 5), minutes),
    st.tuples(st.just("return"), units, minutes),
    st.tuples(st.just("count"), st.integers(0, 12), minutes),
    st.tuples(st.just("adjust"), st.integers(-8, 8).filter(bool), minutes),
    st.tuples(st.just("reserve"), units, minutes),
    st.tuples(st.just("collect"), st.integers(0, 5), minutes),
    st.tuples(st.just("release"), st.integers(0, 5), minutes),
    st.tuples(st.just("expire"), st.integers(0, 5), minutes),
    st.tuples(st.just("lapse"), st.integers(0, 5), minutes),
    st.tuples(st.just("replay"), st.integers(0, 30), minutes),
)


def _check(sku: str, store: StockStore, reservations: list[str]) -> None:
    shards = store.shards(sku, STORE)
    for s in shards:
        assert s.on_hand >= 0, s
        assert s.reserved >= 0, s
        assert s.available >= 0, s
        assert s.available == s.on_hand - s.reserved, s
    active = 0
    for rid in reservations:
        item = store.get_reservation(rid)
        if item is not None and item["status"] in {"held", "ready"}:
            active += item["quantity"]
    assert sum(s.reserved for s in shards) == active


def _reserve(sku: str, quantity: int) -> list[str]:
    request = ReservationRequest(customer_id=CUSTOMER, sku=sku, quantity=quantity, location_id=STORE)
    try:
        item, _ = StockService().create_reservation(request, uuid.uuid4().hex)
    except Conflict as err:
        if err.code != "insufficient_stock":
            raise
        return []
    return [item["reservation_id"]]


def _step(  # noqa: PLR0912 - one branch per kind of operation
    op: tuple[str, int, int], sku: str, store: StockStore, sent: list[str], res: list[str]
) -> None:
    kind, n, minute = op
    when = support.at(minute)
    body: str | None = None
    if kind == "sale":
        body = support.message(support.pos_sale(uuid.uuid4().hex, sku, n, STORE, when))
    elif kind == "order":
        body = support.message(
            support.order(f"O{len(sent)}", [(sku, n)], STORE, fulfilment="collect", when=when)
        )
    elif kind == "cancel":
        body = support.message(support.cancel(f"O{n}", when=when))
    elif kind == "return":
        body = support.message(support.refund(uuid.uuid4().hex, sku, n, STORE, when))
    elif kind == "count":
        body = support.message(support.counted(sku, STORE, n, when))
    elif kind == "adjust":
        body = support.message(support.adjusted(sku, STORE, n, when))
    elif kind == "replay" and sent:
        body = sent[n % len(sent)]
    elif kind == "reserve":
        res.extend(_reserve(sku, n))
    elif res:
        item = store.get_reservation(res[n % len(res)])
        if item is None:  # removed by TTL in an earlier step
            return
        if kind == "collect":
            store.settle(item, "collected")
        elif kind in {"release", "expire"}:
            was_active = item["status"] in {"held", "ready"}
            store.settle(item, "released" if kind == "release" else "expired")
            if was_active:  # TTL may ALSO remove it (the image it saw was active): released once
                support.apply_lapsed(item)
        elif kind == "lapse" and item["status"] in {"held", "ready"}:
            store.table.delete(item["pk"], item["sk"])  # what DynamoDB TTL does
            support.apply_lapsed(item)
            support.apply_lapsed(item)
    if body is not None:
        support.apply_message(body)
        sent.append(body)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shards=st.sampled_from([1, 3]), steps=st.lists(ops, min_size=1, max_size=14))
def test_any_interleaving_keeps_stock_non_negative_and_reservations_consistent(
    stack: Resolver, shards: int, steps: list[tuple[str, int, int]]
) -> None:
    store = StockStore()
    support.profile(CUSTOMER, store)
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    if shards > 1:
        StockService().configure_sku(sku, None, shards)
    sent: list[str] = []
    reservations: list[str] = []
    support.apply_message(support.message(support.adjusted(sku, STORE, 6, support.at(-1))))
    for op in steps:
        _step(op, sku, store, sent, reservations)
        _check(sku, store, reservations)


def test_racing_reservations_for_the_last_units_exactly_the_available_quantity_succeeds(
    stack: Resolver,
) -> None:
    # Given 5 units at the store and 12 customers racing for one each
    support.profile(CUSTOMER)
    sku = "SKU-LAST-UNITS"
    support.apply_message(support.message(support.adjusted(sku, STORE, 5, support.at(0))))
    request = ReservationRequest(customer_id=CUSTOMER, sku=sku, quantity=1, location_id=STORE)
    # When they all reserve at once
    results = race(12, lambda i: StockService().create_reservation(request, f"key-{i}"))
    # Then exactly 5 succeed, 7 are refused as insufficient stock, and nothing went negative
    won = [r for r in results if isinstance(r, tuple)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 5
    assert len(lost) == 7
    assert all(e.code == "insufficient_stock" for e in lost)
    stock = support.figures(sku, STORE)
    assert (stock.on_hand, stock.reserved, stock.available) == (5, 5, 0)


def test_racing_orders_on_a_sharded_sku_never_oversell(stack: Resolver) -> None:
    # Given 7 units online spread over 4 shards
    sku = "SKU-FLASH"
    support.apply_message(support.message(support.adjusted(sku, "WEB-FULFILMENT", 7, support.at(0))))
    StockService().configure_sku(sku, None, 4)
    # When 16 one-unit orders race
    results = race(
        16,
        lambda i: support.apply_message(
            support.message(support.order(f"F{i}", [(sku, 1)], "WEB-FULFILMENT", when=support.at(1)))
        ),
    )
    # Then 7 are taken, 9 are shortfalls, and stock is exactly zero
    assert not [r for r in results if isinstance(r, Exception)]
    stock = support.figures(sku, "WEB-FULFILMENT")
    assert (stock.on_hand, stock.available) == (0, 0)
    assert sum(s["units"] for s in support.collection(sku, model.SHORTFALL_ENTITY)) == 9
