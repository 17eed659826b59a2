"""An earning as one plain write: lots not folded into the balance yet, under every reader and race.

An order's lot is put alone (``folded`` false, its own ledger entry); the balance item is left as it
was, and the next transaction of the book folds the lot in. These tests hammer what that changes:
what readers see at every step, redemptions racing earnings, a refund racing its order, a merge
racing an earning of the absorbed customer, a tier reached by two racing orders, and data written
by the earlier code (entry items, no ``folded``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.customers import customer_pk
from loyalty.errors import Unprocessable
from loyalty.identity.store import IdentityStore
from loyalty.models.events import Channel
from loyalty.models.merges import CustomerMerged
from loyalty.points.model import Balance, Entry, LineEarning, Lot
from loyalty.points.service import PointsService
from loyalty.store.table import Table
from tests.support.points import Clock, order_event, points_service, refund_event
from tests.support.races import race
from tests.unit.test_points_ledger import assert_invariant, purge

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
MATURED = NOW - timedelta(days=20)  # a POS sale this old earns available points at once


@pytest.fixture
def svc(stack: Resolver) -> Iterator[PointsService]:
    for service in points_service(Clock(NOW)):
        service.rules()  # seeded once, before any race
        yield service


def _items(customer_id: str, prefix: str) -> list[dict[str, Any]]:
    return list(Table().query_all(customer_pk(customer_id), sk_prefix=prefix, consistent=True))


def _lot(customer_id: str, order_id: str) -> dict[str, Any]:
    (item,) = _items(customer_id, f"PTS#LOT#{order_id}")
    return item


def _order(customer: str, order_id: str, amount: int, **kw: Any) -> Any:
    kw.setdefault("occurred_at", NOW)
    return order_event(customer, order_id, [("SKU-A", 1, str(amount))], **kw)


def _jobs(jobs: Iterable[Callable[[], Any]]) -> Callable[[int], Any]:
    """``race`` work running the i-th job."""
    listed = list(jobs)
    return lambda i: listed[i]()


def _seen(svc: PointsService, customer: str) -> dict[str, int]:
    view = svc.points(customer)
    return {k: view[k] for k in ("available", "pending", "debt", "lifetime_earned")}


def test_an_earning_writes_its_lot_alone_and_every_reader_counts_it(svc: PointsService) -> None:
    # Given a customer whose first order was credited
    assert svc.apply(_order("c_p1", "W-1", 30)) == "earned"
    # When a second order of the same channel arrives, twice
    before = _items("c_p1", "PTS#BALANCE")
    assert [svc.apply(_order("c_p1", "W-2", 20)) for _ in range(2)] == ["earned", "duplicate"]
    # Then only its lot was written: not folded, no entry item, the balance item unchanged
    assert _items("c_p1", "PTS#BALANCE") == before
    lot = _lot("c_p1", "W-2")
    assert (lot["folded"], lot["own_entries"], lot["gsi1pk"].startswith("PTSDUE#")) == (False, True, True)
    assert _items("c_p1", "PTS#E#") == []
    # And the points view, the ledger and the invariant all count both orders
    assert (
        _seen(svc, "c_p1")
        == assert_invariant("c_p1")
        == {
            "available": 0,
            "pending": 50,
            "debt": 0,
            "lifetime_earned": 50,
        }
    )
    staff = IdentityStore().points_balance("c_p1")  # the staff 360 view's figures
    assert staff is not None
    assert (staff["pending"], staff["lifetime_earned"]) == (50, 50)
    entries = svc.ledger("c_p1", 10, None)["entries"]
    assert [(e["kind"], e["order_id"], e["points"]) for e in entries] == [
        ("earn", "W-2", 20),
        ("earn", "W-1", 30),
    ]


def test_the_next_transaction_folds_the_lots_once_and_keeps_their_ledger_place(svc: PointsService) -> None:
    # Given three orders earned available at once (plain puts)
    for n in range(3):
        svc.apply(_order("c_p2", f"P-{n}", 10 * (n + 1), channel=Channel.POS, occurred_at=MATURED))
    assert [_lot("c_p2", f"P-{n}")["folded"] for n in range(3)] == [False, False, False]
    # When the customer redeems (a transaction of the book)
    svc.redeem("c_p2", 15, "k1", "web", None)
    # Then every lot is folded into the balance item, and nothing is counted twice
    assert [_lot("c_p2", f"P-{n}")["folded"] for n in range(3)] == [True, True, True]
    (balance,) = _items("c_p2", "PTS#BALANCE")
    assert (balance["available"], balance["lifetime_earned"]) == (45, 60)
    assert _seen(svc, "c_p2") == assert_invariant("c_p2")
    # And the ledger pages, one entry at a time, list every entry once, earnings before the spend
    seen, cursor = [], None
    while True:
        page = svc.ledger("c_p2", 1, cursor)
        seen += [(e["kind"], e["points"]) for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([("earn", 10), ("earn", 20), ("earn", 30), ("redeem", -15)])
    assert seen[0] == ("redeem", -15)
    assert sum(points for _, points in seen) == 45


def test_redemptions_racing_earnings_never_overdraw(svc: PointsService) -> None:
    # Given 100 available points
    svc.apply(_order("c_p3", "P-0", 100, channel=Channel.POS, occurred_at=MATURED))
    svc.redeem("c_p3", 1, "fold", "web", None)  # folded: the races below start from a balance item
    # When 4 orders earning 10 available points each and 8 redemptions of 30 race
    orders = [_order("c_p3", f"P-{n}", 10, channel=Channel.POS, occurred_at=MATURED) for n in range(1, 5)]

    def work(i: int) -> str:
        service = PointsService(clock=svc.clock, settings=svc.settings)
        if i < len(orders):
            return service.apply(orders[i])
        try:
            service.redeem("c_p3", 30, f"r{i}", "pos", None)
        except Unprocessable as err:
            return err.code
        return "redeemed"

    outcomes = race(12, work)
    # Then every order earned once, the redemptions that succeeded were affordable, none overdrew
    assert outcomes[:4] == ["earned"] * 4
    redeemed = outcomes[4:].count("redeemed")
    assert set(outcomes[4:]) <= {"redeemed", "insufficient_points"}
    assert 3 <= redeemed <= 4  # 99 points before the race, 139 once every order is in
    seen = assert_invariant("c_p3")
    assert seen == _seen(svc, "c_p3")
    assert seen["available"] == 99 + 40 - 30 * redeemed >= 0


def test_a_refund_racing_its_order_is_applied_exactly_once(svc: PointsService) -> None:
    for attempt in range(6):
        # Given a customer with an earlier order (so the next order is a plain put)
        customer = f"c_rr{attempt}"
        svc.apply(_order(customer, "W-0", 5))
        order = order_event(customer, "W-1", [("A", 2, "10"), ("B", 1, "30")], occurred_at=NOW)
        refund = refund_event(customer, "W-1", "R-1", [("1", "A", 1)], occurred_at=NOW)
        # When the order and a refund of one unit race (the refund may find no lot yet)
        outcomes = race(2, _jobs(partial(PointsService(clock=svc.clock).apply, e) for e in (order, refund)))
        # Then the refund is applied once, whatever the interleaving, and no refund is left waiting
        assert outcomes[0] == "earned", outcomes
        assert outcomes[1] in {"reversed", "refund_waiting_for_order"}, outcomes
        assert _seen(svc, customer) == assert_invariant(customer)
        assert assert_invariant(customer)["pending"] == 5 + 50 - 10
        assert _items(customer, "PTS#WAIT#") == []
        purge(customer)


def test_an_earning_of_a_customer_absorbed_meanwhile_ends_at_the_survivor(svc: PointsService) -> None:
    for attempt in range(6):
        # Given two customers with points, and identity's REDIRECT of the absorbed one
        survivor, absorbed = f"c_sv{attempt}", f"c_ab{attempt}"
        svc.apply(_order(survivor, "W-S", 10))
        svc.apply(_order(absorbed, "W-A", 20))
        Table().put(
            {"pk": customer_pk(absorbed), "sk": "REDIRECT", "entity": "redirect", "survivor_id": survivor}
        )
        merged = CustomerMerged(
            kind="merge", merge_id=f"m{attempt}", survivor_id=survivor, absorbed_ids=[absorbed], at=NOW
        )
        # When the merge and an order routed to the absorbed customer before the REDIRECT race
        routed = _order(absorbed, "W-late", 40)
        fresh = PointsService(clock=svc.clock)
        outcomes = race(2, _jobs([partial(fresh.apply_merge, merged), partial(fresh.apply, routed)]))
        # Then the survivor holds all three orders, the absorbed customer none, nothing doubled
        assert outcomes == [["merge"], "earned"], outcomes
        assert assert_invariant(survivor)["pending"] == 70
        assert assert_invariant(absorbed)["pending"] == 0
        assert {lot["order_id"] for lot in svc.points(survivor)["lots"]} == {"W-S", "W-A", "W-late"}
        purge(survivor, absorbed)


def test_an_earning_read_before_the_redirect_and_put_after_the_merge_moves_to_the_survivor(
    svc: PointsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two customers with points
    svc.apply(_order("c_sv", "W-S", 10))
    svc.apply(_order("c_ab", "W-A", 20))
    merged = CustomerMerged(
        kind="merge", merge_id="m-late", survivor_id="c_sv", absorbed_ids=["c_ab"], at=NOW
    )
    earning = PointsService(clock=svc.clock, settings=svc.settings)
    real_load = earning.store.load
    calls: list[str] = []

    def load_then_merge(customer_id: str, *args: Any, **kw: Any) -> Any:
        book = real_load(customer_id, *args, **kw)
        if not calls:  # right after the order's first read: identity's REDIRECT, then the whole merge
            calls.append(customer_id)
            Table().put(
                {"pk": customer_pk("c_ab"), "sk": "REDIRECT", "entity": "redirect", "survivor_id": "c_sv"}
            )
            assert svc.apply_merge(merged) == ["merge"]
        return book

    monkeypatch.setattr(earning.store, "load", load_then_merge)
    # When the order, read before the REDIRECT, puts its lot on the absorbed customer after the merge
    assert earning.apply(_order("c_ab", "W-late", 40)) == "earned"
    # Then its check after the put moves it to the survivor, and a redelivery is a duplicate there
    assert calls == ["c_ab"]
    assert assert_invariant("c_ab") == {"available": 0, "pending": 0, "debt": 0, "lifetime_earned": 0}
    assert assert_invariant("c_sv")["pending"] == 70
    assert {lot["order_id"] for lot in svc.points("c_sv")["lots"]} == {"W-S", "W-A", "W-late"}
    assert svc.apply(_order("c_ab", "W-late", 40)) == "duplicate"
    assert assert_invariant("c_sv")["pending"] == 70


def test_a_tier_reached_by_two_racing_orders_is_raised_once(svc: PointsService) -> None:
    for attempt in range(4):
        # Given a customer with 400 qualifying points
        customer = f"c_tr{attempt}"
        svc.apply(_order(customer, "W-0", 400))
        # When two orders of 300 race (each alone stays under silver's 1000; together they reach it)
        orders = [_order(customer, f"W-{n}", 300) for n in (1, 2)]
        applies = (partial(PointsService(clock=svc.clock).apply, o) for o in orders)
        assert race(2, _jobs(applies)) == ["earned"] * 2
        # Then the customer is silver, and the change is recorded once
        assert svc.points(customer)["tier"] == "silver"
        changes = _items(customer, "PTS#TIER#")
        assert [(c["from_tier"], c["to_tier"]) for c in changes] == [("bronze", "silver")]
        assert _seen(svc, customer) == assert_invariant(customer)
        purge(customer)


def test_a_history_bonus_is_awarded_once_to_racing_orders(svc: PointsService) -> None:
    # Given a web customer
    svc.apply(_order("c_hb", "W-0", 10))
    # When three in-store orders (a channel new to the customer) race
    orders = [_order("c_hb", f"P-{n}", 10, channel=Channel.POS) for n in range(3)]
    assert race(3, lambda i: PointsService(clock=svc.clock).apply(orders[i])) == ["earned"] * 3
    # Then the first-purchase-in-a-new-channel bonus (50) and the omnichannel bonus (100) went once
    bonuses = [e for e in svc.ledger("c_hb", 50, None)["entries"] if e["kind"] == "bonus"]
    assert sorted(r for e in bonuses for r in e["rule_ids"]) == [
        "first-purchase-new-channel",
        "omnichannel-monthly",
    ]
    assert assert_invariant("c_hb")["lifetime_earned"] == 40 + 50 + 100


def test_balances_lots_and_entries_of_the_earlier_code_read_the_same(svc: PointsService) -> None:
    # Given a book as the earlier code wrote it: an entry item per earning, lots without `folded`
    table, customer = Table(), "c_old_book"
    lot = Lot(
        customer_id=customer,
        order_id="W-old",
        channel="web",
        event_id="ev-old",
        occurred_at=MATURED.isoformat(),
        pending_until=(MATURED + timedelta(days=14)).isoformat(),
        expires_on=(MATURED + timedelta(days=30)).isoformat(),
        points=70,
        remaining=70,
        status="available",
        lines={"1": LineEarning("SKU-A", 1, 70, ["base-eur"])},
    )
    item = lot.to_item()
    assert "folded" not in item
    assert "own_entries" not in item
    table.put(item)
    entry = Entry(
        customer_id=customer, kind="earn", points=70, at=MATURED.isoformat(), order_id="W-old", version=1
    )
    table.put(entry.to_item())
    balance = Balance(customer_id=customer, available=70, lifetime_earned=70, version=1)
    balance.buckets = {MATURED.strftime("%Y-%m"): 70}
    balance.channels = {"web": MATURED.isoformat()}
    table.put(balance.to_item())
    # When a new order is earned (plain) and points are redeemed
    assert svc.apply(_order(customer, "W-new", 30)) == "earned"
    assert (
        _seen(svc, customer)
        == assert_invariant(customer)
        == {
            "available": 70,
            "pending": 30,
            "debt": 0,
            "lifetime_earned": 100,
        }
    )
    svc.redeem(customer, 60, "k", "web", None)
    # Then the old lot and entry count once, the new lot once
    assert _seen(svc, customer) == assert_invariant(customer)
    assert assert_invariant(customer)["available"] == 10
    kinds = [(e["kind"], e["points"]) for e in svc.ledger(customer, 10, None)["entries"]]
    assert sorted(kinds) == sorted([("earn", 70), ("earn", 30), ("redeem", -60)])


# ---------------------------------------------------------------------- properties
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(1, 90), st.booleans()),
        st.tuples(st.just("redeem"), st.integers(1, 120), st.just(False)),
        st.tuples(st.just("refund"), st.integers(0, 5), st.just(False)),
        st.tuples(st.just("release"), st.just(0), st.just(False)),
        st.tuples(st.just("advance"), st.integers(1, 12), st.just(False)),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_readers_see_the_ledger_sum_at_every_step_with_lots_not_folded(
    svc: PointsService, steps: list[tuple[str, int, bool]]
) -> None:
    clock = svc.clock
    assert isinstance(clock, Clock)
    customer = f"c_{uuid.uuid4().hex}"
    clock.now = NOW
    svc.store.save_job_state("release", next_day=NOW.date().isoformat())
    orders: list[str] = []
    Table().put({"pk": customer_pk(customer), "sk": "PROFILE", "entity": "profile", "customer_id": customer})
    try:
        for n, (kind, value, matured) in enumerate(steps):
            if kind == "order":
                orders.append(f"P-{n}")
                at = clock.now - timedelta(days=20) if matured else clock.now
                routed = _order(customer, orders[-1], value, channel=Channel.POS, occurred_at=at)
                svc.apply(routed)
                assert svc.apply(routed) == "duplicate"
            elif kind == "redeem":
                with contextlib.suppress(Unprocessable):
                    svc.redeem(customer, value, f"k{n}", "pos", None)
            elif kind == "refund" and orders:
                order_id = orders[value % len(orders)]
                svc.apply(
                    refund_event(customer, order_id, f"R{n}", [("1", "SKU-A", 1)], occurred_at=clock.now)
                )
            elif kind == "release":
                svc.release_pending()
            elif kind == "advance":
                clock.now += timedelta(days=value)
            # the reader's figures are the ledger's, every step
            assert _seen(svc, customer) == assert_invariant(customer)
    finally:
        purge(customer)
