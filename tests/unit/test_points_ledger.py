"""Points ledger on the table: invariants under any interleaving, duplicates, clawback, merges."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.customers import customer_pk
from loyalty.errors import Unprocessable
from loyalty.models.events import Channel
from loyalty.models.merges import CustomerMerged
from loyalty.points.service import PointsService
from loyalty.routing.router import RoutedEvent
from loyalty.store.table import Table
from tests.support.points import Clock, cancel_event, order_event, points_service, refund_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def svc(stack: Resolver, clock: Clock) -> Iterator[PointsService]:
    yield from points_service(clock)


def _seen_by_readers(balance: dict[str, Any] | None, lots: list[dict[str, Any]]) -> dict[str, int]:
    """The balance item plus the lots not folded into it yet (each untouched since its plain put)."""
    unfolded = [lot for lot in lots if lot.get("folded") is False]
    if balance is None:
        assert len(unfolded) == len(lots)
    seen = {k: int((balance or {}).get(k, 0)) for k in ("available", "pending", "debt", "lifetime_earned")}
    for lot in unfolded:
        assert lot["own_entries"]
        assert (lot["remaining"], lot.get("reversed", 0)) == (lot["points"], 0)
        assert lot["status"] in {"pending", "available"}
        seen[lot["status"]] += lot["remaining"]
        seen["lifetime_earned"] += lot["points"]
    return seen


def assert_invariant(customer_id: str) -> dict[str, int]:
    """balance == sum(ledger) and lots add up to the balance; nothing below zero.

    What a reader sees: the balance item plus the lots not folded into it yet (an earning written
    as one plain put); the ledger: the entry items plus the earnings lots stand for themselves
    (``own_entries``: their earn and bonus entries add up to the lot's ``points``).
    """
    table = Table()
    items = list(table.query_all(customer_pk(customer_id), sk_prefix="PTS#", consistent=True))
    entries = [i for i in items if i["entity"] == "points_entry"]
    lots = [i for i in items if i["entity"] == "points_lot"]
    balance = next((i for i in items if i["entity"] == "points_balance"), None)
    if balance is None:
        assert not entries
    seen = _seen_by_readers(balance, lots)
    ledger = sum(e["points"] for e in entries) + sum(lot["points"] for lot in lots if lot.get("own_entries"))
    net = seen["available"] + seen["pending"] - seen["debt"]
    assert net == ledger
    assert seen["available"] >= 0
    assert seen["pending"] >= 0
    assert seen["debt"] >= 0
    assert sum(lot["remaining"] for lot in lots if lot["status"] == "available") == seen["available"]
    assert sum(lot["remaining"] for lot in lots if lot["status"] == "pending") == seen["pending"]
    assert all(lot["remaining"] >= 0 for lot in lots)
    return seen


def purge(*customers: str) -> None:
    """Delete customers' items: moto copies the whole table per transaction, keep it small."""
    client = Table()
    for customer in customers:
        for item in list(client.query_all(customer_pk(customer))):
            client.delete(item["pk"], item["sk"])


def test_an_order_earns_pending_points_once_with_its_causes(svc: PointsService) -> None:
    # Given a completed web order of 2 x 10.50 + 99.99 EUR
    routed = order_event("c_a", "W-1", [("SKU-A", 2, "10.50"), ("SKU-B", 1, "99.99")], occurred_at=NOW)
    # When it is delivered three times
    outcomes = [svc.apply(routed) for _ in range(3)]
    # Then it earns once: 21 + 99 points, pending, explained per line and rule
    assert outcomes == ["earned", "duplicate", "duplicate"]
    view = svc.points("c_a")
    assert (view["available"], view["pending"], view["lifetime_earned"]) == (0, 120, 120)
    (entry,) = svc.ledger("c_a", 10, None)["entries"]
    assert entry["kind"] == "earn"
    assert entry["event_id"] == routed.event.event_id
    assert entry["rule_ids"] == ["base-eur"]
    assert [(line["line_id"], line["points"]) for line in entry["lines"]] == [("1", 21), ("2", 99)]
    assert_invariant("c_a")


def test_the_same_order_under_another_event_id_does_not_earn_twice(svc: PointsService) -> None:
    first = order_event("c_b", "W-2", [("SKU-A", 1, "50")], occurred_at=NOW)
    again = order_event("c_b", "W-2", [("SKU-A", 1, "50")], occurred_at=NOW, event_id="other-delivery")
    assert svc.apply(first) == "earned"
    assert svc.apply(again) == "order_already_credited"
    assert svc.points("c_b")["pending"] == 50


def test_unknown_currency_is_recorded_as_ignored_not_converted(svc: PointsService) -> None:
    routed = order_event("c_c", "W-3", [("SKU-A", 1, "50")], occurred_at=NOW, currency="JPY")
    assert svc.apply(routed) == "unsupported_currency"
    assert svc.apply(routed) == "duplicate"
    assert assert_invariant("c_c")["pending"] == 0


def test_refund_before_order_reverses_exactly_the_returned_lines(svc: PointsService) -> None:
    # Given a refund of one of two units of line 1 that arrives before its order
    refund = refund_event("c_d", "W-4", "R-1", [("1", "SKU-A", 1)], occurred_at=NOW)
    assert svc.apply(refund) == "refund_waiting_for_order"
    # When the order arrives
    assert svc.apply(
        order_event("c_d", "W-4", [("SKU-A", 2, "10"), ("SKU-B", 1, "30")], occurred_at=NOW)
    ) == ("earned")
    # Then the returned unit's points are reversed, as if the refund had come after the order
    view = svc.points("c_d")
    assert view["pending"] == 50 - 10
    kinds = [e["kind"] for e in svc.ledger("c_d", 10, None)["entries"]]
    assert kinds == ["reverse", "earn"]
    assert assert_invariant("c_d")["pending"] == 40


def test_clawback_takes_what_is_available_and_carries_the_rest_as_debt(
    svc: PointsService, clock: Clock
) -> None:
    # Given 100 available points, all redeemed
    svc.apply(order_event("c_e", "P-1", [("SKU-A", 1, "100")], channel=Channel.POS, occurred_at=NOW))
    svc.release_pending()
    clock.now = NOW + timedelta(days=15)
    svc.release_pending()
    svc.redeem("c_e", 80, "k1", "pos", None)
    # When the order is returned
    svc.apply(
        refund_event("c_e", "P-1", "R-1", [("1", "SKU-A", 1)], channel=Channel.POS, occurred_at=clock.now)
    )
    # Then the 20 left are taken and 80 become a visible debt; the balance never goes negative
    assert assert_invariant("c_e") == {"available": 0, "pending": 0, "debt": 80, "lifetime_earned": 0}
    # And the next earning settles the debt first
    svc.apply(order_event("c_e", "P-2", [("SKU-A", 1, "50")], channel=Channel.POS, occurred_at=clock.now))
    assert assert_invariant("c_e") == {"available": 0, "pending": 0, "debt": 30, "lifetime_earned": 50}
    svc.apply(order_event("c_e", "P-3", [("SKU-A", 1, "50")], channel=Channel.POS, occurred_at=clock.now))
    assert assert_invariant("c_e") == {"available": 0, "pending": 20, "debt": 0, "lifetime_earned": 100}


def test_cancellation_reverses_everything_including_bonuses(svc: PointsService) -> None:
    svc.apply(order_event("c_f", "W-9", [("SKU-A", 1, "40")], channel=Channel.WEB, occurred_at=NOW))
    svc.apply(order_event("c_f", "P-9", [("SKU-A", 1, "40")], channel=Channel.POS, occurred_at=NOW))
    pending = svc.points("c_f")["pending"]
    assert pending == 40 + 40 + 50 + 100  # base, base, first purchase in a new channel, omnichannel
    assert svc.apply(cancel_event("c_f", "P-9", occurred_at=NOW)) == "reversed"
    assert assert_invariant("c_f")["pending"] == 40


def test_points_of_an_absorbed_customer_go_to_the_survivor(svc: PointsService) -> None:
    # Given an event for a customer that identity absorbed into another
    Table().put({"pk": "CUST#c_old", "sk": "REDIRECT", "entity": "redirect", "survivor_id": "c_new"})
    svc.apply(order_event("c_old", "W-7", [("SKU-A", 1, "25")], occurred_at=NOW))
    # Then the survivor earns
    assert svc.points("c_new")["pending"] == 25
    assert svc.points("c_old")["customer_id"] == "c_new"


def test_merge_moves_lots_balance_and_debt_once_and_unmerge_moves_them_back(svc: PointsService) -> None:
    # Given two customers with points, one with a debt
    svc.apply(order_event("c_s", "W-10", [("SKU-A", 1, "30")], occurred_at=NOW))
    svc.apply(order_event("c_x", "W-11", [("SKU-A", 1, "70")], occurred_at=NOW))
    merged = CustomerMerged(kind="merge", merge_id="m1", survivor_id="c_s", absorbed_ids=["c_x"], at=NOW)
    # When the merge is delivered twice
    assert svc.apply_merge(merged) == ["merge"]
    assert svc.apply_merge(merged) == ["duplicate"]
    # Then the survivor holds both lots (the moved one remembers its origin) and the absorbed none
    survivor = svc.points("c_s")
    assert survivor["pending"] == 100
    assert {lot["order_id"]: lot["origin_customer_id"] for lot in survivor["lots"]} == {
        "W-10": None,
        "W-11": "c_x",
    }
    assert assert_invariant("c_x")["pending"] == 0
    assert assert_invariant("c_s")["lifetime_earned"] == 100
    # When it is undone
    unmerged = CustomerMerged(kind="unmerge", merge_id="m1", survivor_id="c_s", absorbed_ids=["c_x"], at=NOW)
    assert svc.apply_merge(unmerged) == ["unmerge"]
    assert svc.apply_merge(unmerged) == ["duplicate"]
    assert assert_invariant("c_x")["pending"] == 70
    assert assert_invariant("c_s")["pending"] == 30
    # And the lot moved back says where it came from (so it is not announced as newly earned)
    assert [lot["origin_customer_id"] for lot in svc.points("c_x")["lots"]] == ["c_s"]


def test_redemption_never_overdraws_and_is_idempotent(svc: PointsService, clock: Clock) -> None:
    svc.apply(order_event("c_r", "P-20", [("SKU-A", 1, "60")], channel=Channel.POS, occurred_at=NOW))
    clock.now = NOW + timedelta(days=20)
    svc.store.save_job_state("release", next_day=NOW.date().isoformat())
    svc.release_pending()
    first, replay = svc.redeem("c_r", 40, "key-1", "web", None)
    again, replay2 = svc.redeem("c_r", 40, "key-1", "web", None)
    assert (replay, replay2, again["redemption_id"]) == (False, True, first["redemption_id"])
    with pytest.raises(Unprocessable) as err:
        svc.redeem("c_r", 40, "key-2", "web", None)
    assert err.value.code == "insufficient_points"
    svc.cancel_redemption("c_r", first["redemption_id"])
    svc.cancel_redemption("c_r", first["redemption_id"])
    assert assert_invariant("c_r")["available"] == 60


# ---------------------------------------------------------------------- properties
ORDERS = st.lists(
    st.lists(st.tuples(st.integers(1, 3), st.integers(1, 120)), min_size=1, max_size=3),
    min_size=1,
    max_size=4,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[list[tuple[int, int]]], list[tuple[str, int, object]]]:
    """Orders (lines of (qty, price)) and a shuffled, duplicated list of operations on them."""
    orders = draw(ORDERS)
    ops: list[tuple[str, int, object]] = [("order", i, None) for i in range(len(orders))]
    for i, lines in enumerate(orders):
        kind = draw(st.sampled_from(["none", "refund", "refund2", "cancel"]))
        if kind in {"refund", "refund2"}:
            line = draw(st.integers(0, len(lines) - 1))
            ops.append(("refund", i, (f"R{i}a", line, draw(st.integers(1, lines[line][0])))))
        if kind == "refund2":
            line = draw(st.integers(0, len(lines) - 1))
            ops.append(("refund", i, (f"R{i}b", line, 1)))
        if kind == "cancel":
            ops.append(("cancel", i, None))
    dupes = draw(st.lists(st.sampled_from(ops), max_size=4))
    return orders, draw(st.permutations(ops + dupes))


def _event(customer: str, op: tuple[str, int, object], orders: list[list[tuple[int, int]]]) -> RoutedEvent:
    kind, i, arg = op
    if kind == "order":
        lines = [(f"SKU-{n}", qty, str(price)) for n, (qty, price) in enumerate(orders[i])]
        return order_event(customer, f"O-{i}", lines, channel=Channel.POS, occurred_at=NOW)
    if kind == "cancel":
        return cancel_event(customer, f"O-{i}", occurred_at=NOW)
    assert isinstance(arg, tuple)
    refund_id, line, qty = arg
    return refund_event(customer, f"O-{i}", refund_id, [(str(line + 1), f"SKU-{line}", qty)], occurred_at=NOW)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_any_arrival_order_with_duplicates_gives_the_same_final_balance(
    svc: PointsService, history: tuple[list[list[tuple[int, int]]], list[tuple[str, int, object]]]
) -> None:
    orders, shuffled = history
    canonical = sorted(set(shuffled), key=lambda op: (op[0] != "order", op[1], str(op[2])))
    results = []
    for ops in (canonical, shuffled):
        customer = f"c_{uuid.uuid4().hex}"
        try:
            for op in ops:
                svc.apply(_event(customer, op, orders))
            results.append(assert_invariant(customer))
        finally:
            purge(customer)
    assert results[0] == results[1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=histories(),
    actions=st.lists(
        st.tuples(
            st.sampled_from(["redeem", "cancel_last", "release", "expire", "advance"]), st.integers(1, 150)
        ),
        max_size=8,
    ),
    seed=st.integers(0, 10_000),
)
def test_redemptions_and_expiry_interleaved_keep_balance_equal_to_ledger(
    svc: PointsService,
    clock: Clock,
    history: tuple[list[list[tuple[int, int]]], list[tuple[str, int, object]]],
    actions: list[tuple[str, int]],
    seed: int,
) -> None:
    orders, shuffled = history
    customer = f"c_{uuid.uuid4().hex}"
    clock.now = NOW
    svc.store.save_job_state("release", next_day=NOW.date().isoformat())
    svc.store.save_job_state("expire", next_day=NOW.date().isoformat())
    steps: list[object] = [*shuffled, *actions]
    order = sorted(range(len(steps)), key=lambda k: (k * 7919 + seed) % (len(steps) * 13 + 1))
    try:
        _play(svc, clock, customer, orders, steps, order)
    finally:
        purge(customer)


def _play(
    svc: PointsService,
    clock: Clock,
    customer: str,
    orders: list[list[tuple[int, int]]],
    steps: list[object],
    order: list[int],
) -> None:
    redeemed: list[str] = []
    for n, k in enumerate(order):
        step = steps[k]
        if isinstance(step, tuple) and step[0] in {"order", "refund", "cancel"}:
            svc.apply(_event(customer, step, orders))
        elif step[0] == "redeem":  # type: ignore[index]
            with contextlib.suppress(Unprocessable):
                redeemed.append(svc.redeem(customer, step[1], f"k{n}", "web", None)[0]["redemption_id"])  # type: ignore[index]
        elif step[0] == "cancel_last":  # type: ignore[index]
            if redeemed:
                svc.cancel_redemption(customer, redeemed.pop())
        elif step[0] == "advance":  # type: ignore[index]
            clock.now += timedelta(days=step[1] % 12 + 1)  # type: ignore[index]
        elif step[0] == "release":  # type: ignore[index]
            svc.release_pending()
        else:
            svc.expire_points()
        assert_invariant(customer)


def test_partial_refunds_in_any_order_reverse_the_same_points(svc: PointsService) -> None:
    refunds = [("R1", "1", 1), ("R2", "1", 2), ("R3", "2", 1)]
    totals = set()
    for perm in itertools.permutations(refunds):
        customer = f"c_{uuid.uuid4().hex}"
        svc.apply(order_event(customer, "O-1", [("A", 3, "9.99"), ("B", 1, "5")], occurred_at=NOW))
        for refund_id, line, qty in perm:
            svc.apply(refund_event(customer, "O-1", refund_id, [(line, "X", qty)], occurred_at=NOW))
        totals.add(tuple(assert_invariant(customer).values()))
        purge(customer)
    assert totals == {(0, 0, 0, 0)}
    assert Decimal("9.99") * 3 > 0


# ---------------------------------------------------------------------- tiers
def test_tier_upgrades_at_once_by_purchase_time_and_downgrades_after_grace(
    svc: PointsService, clock: Clock
) -> None:
    # Given purchases worth 1200 points, one of them made 13 months ago (arriving late)
    svc.apply(order_event("c_t", "O-old", [("A", 1, "900")], occurred_at=NOW - timedelta(days=400)))
    assert svc.points("c_t")["tier"] == "bronze"
    # When a recent purchase brings the rolling 12 months to 1000
    svc.apply(order_event("c_t", "O-new", [("A", 1, "1000")], occurred_at=NOW - timedelta(days=200)))
    # Then the customer is silver at once, and the change is recorded for notifications
    view = svc.points("c_t")
    assert (view["tier"], view["qualifying_points_12m"]) == ("silver", 1000)
    changes = list(Table().query_all(customer_pk("c_t"), sk_prefix="PTS#TIER#"))
    assert [(c["entity"], c["from_tier"], c["to_tier"]) for c in changes] == [
        ("tier_change", "bronze", "silver")
    ]
    # When the purchase leaves the 12-month window, the review starts a grace period first
    clock.now = NOW + timedelta(days=200)
    svc.store.save_job_state("tiers", next_day=(NOW + timedelta(days=1)).date().isoformat())
    svc.review_tiers()
    assert svc.points("c_t")["tier"] == "silver"
    assert svc.points("c_t")["downgrade_since"] is not None
    # And downgrades once the grace period has passed
    clock.now += timedelta(days=31)
    svc.review_tiers()
    assert svc.points("c_t")["tier"] == "bronze"
    changes = list(Table().query_all(customer_pk("c_t"), sk_prefix="PTS#TIER#"))
    assert [c["to_tier"] for c in changes] == ["silver", "bronze"]


def test_merge_carries_debt_and_late_refund_of_a_moved_order(svc: PointsService, clock: Clock) -> None:
    # Given an absorbed customer with a debt and a survivor with points
    svc.apply(order_event("c_d1", "P-1", [("A", 1, "40")], channel=Channel.POS, occurred_at=NOW))
    clock.now = NOW + timedelta(days=15)
    svc.store.save_job_state("release", next_day=NOW.date().isoformat())
    svc.release_pending()
    svc.redeem("c_d1", 40, "k", "pos", None)
    svc.apply(refund_event("c_d1", "P-1", "R-1", [("1", "A", 1)], channel=Channel.POS, occurred_at=clock.now))
    assert assert_invariant("c_d1")["debt"] == 40
    svc.apply(order_event("c_d2", "W-2", [("A", 1, "30")], occurred_at=clock.now))
    # When c_d1 is merged into c_d2
    merged = CustomerMerged(
        kind="merge", merge_id="m2", survivor_id="c_d2", absorbed_ids=["c_d1"], at=clock.now
    )
    svc.apply_merge(merged)
    # Then the debt moved with the customer, and the survivor's next earning settles it (that
    # earning also gets the omnichannel bonus: the merged history has web and pos purchases)
    assert assert_invariant("c_d1") == {"available": 0, "pending": 0, "debt": 0, "lifetime_earned": 0}
    assert assert_invariant("c_d2")["debt"] == 40
    Table().put({"pk": "CUST#c_d1", "sk": "REDIRECT", "entity": "redirect", "survivor_id": "c_d2"})
    svc.apply(order_event("c_d1", "W-3", [("A", 1, "50")], occurred_at=clock.now))
    assert assert_invariant("c_d2") == {
        "available": 0,
        "pending": 30 + 50 + 100 - 40,
        "debt": 0,
        "lifetime_earned": 180,
    }


def test_a_large_ledger_moves_in_several_transactions_exactly_once(svc: PointsService) -> None:
    # Given an absorbed customer with more lots than one transaction moves
    for n in range(35):
        svc.apply(order_event("c_big", f"W-{n}", [("A", 1, "10")], occurred_at=NOW))
    svc.apply(order_event("c_keep", "W-k", [("A", 1, "5")], occurred_at=NOW))
    merged = CustomerMerged(kind="merge", merge_id="m3", survivor_id="c_keep", absorbed_ids=["c_big"], at=NOW)
    # When the merge is applied (and delivered again)
    assert svc.apply_merge(merged) == ["merge"]
    assert svc.apply_merge(merged) == ["duplicate"]
    # Then every lot moved once, with one pair of merge_transfer entries per transaction
    assert assert_invariant("c_keep")["pending"] == 355
    assert assert_invariant("c_big")["pending"] == 0
    transfers = [e for e in svc.ledger("c_keep", 100, None)["entries"] if e["kind"] == "merge_transfer"]
    assert sorted(e["points"] for e in transfers) == [50, 300]


def test_cancelling_a_redemption_after_its_lot_was_refunded_settles_the_debt(
    svc: PointsService, clock: Clock
) -> None:
    # Given 100 points redeemed in part (80), then the order refunded: 80 points of debt
    svc.apply(order_event("c_cx", "P-1", [("A", 1, "100")], channel=Channel.POS, occurred_at=NOW))
    clock.now = NOW + timedelta(days=15)
    svc.store.save_job_state("release", next_day=NOW.date().isoformat())
    svc.release_pending()
    redemption, _ = svc.redeem("c_cx", 80, "k", "pos", None)
    svc.apply(refund_event("c_cx", "P-1", "R-1", [("1", "A", 1)], channel=Channel.POS, occurred_at=clock.now))
    assert assert_invariant("c_cx")["debt"] == 80
    # When the redemption is cancelled
    cancelled = svc.cancel_redemption("c_cx", redemption["redemption_id"])
    # Then its points settle the debt: as if neither the order nor the redemption had happened
    assert cancelled["returned"] == 80
    assert assert_invariant("c_cx") == {"available": 0, "pending": 0, "debt": 0, "lifetime_earned": 0}
