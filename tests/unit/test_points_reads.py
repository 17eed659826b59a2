"""Cheaper points reads and bonuses without a transaction (issue 16, ``pts2``).

An order decides on an eventually consistent read (``StaleReads`` answers some items as they were
earlier); a book that is committed is read consistently; a full book is the balance and one query
from the first lot to the REDIRECT; a first-purchase-in-a-channel or omnichannel bonus goes to the
order that claims it first (``PTS#BONUS#<kind>#<scope>``, put only if absent), with no balance
transaction. Each test fails with its guard removed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.customers import customer_pk
from loyalty.errors import Unprocessable
from loyalty.models.events import Channel
from loyalty.points.service import PointsService
from loyalty.store import table as table_module
from loyalty.store.table import Capacity
from tests.support.points import Clock, points_service, refund_event
from tests.support.stale import StaleReads
from tests.unit.test_points_fold import MATURED, NOW, _items, _lot, _order
from tests.unit.test_points_ledger import assert_invariant, purge


@pytest.fixture
def svc(stack: Resolver) -> Iterator[PointsService]:
    for service in points_service(Clock(NOW)):
        service.rules()  # seeded before any double is installed
        yield service


def test_a_history_bonus_is_claimed_and_written_as_one_plain_put(
    svc: PointsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer who bought on the web
    svc.apply(_order("c_b1", "W-0", 10, occurred_at=MATURED))
    before = _items("c_b1", "PTS#BALANCE")
    # When their first in-store order arrives (a channel new to them, a second channel this month)
    assert svc.apply(_order("c_b1", "P-1", 10, channel=Channel.POS, occurred_at=MATURED)) == "earned"
    # Then its lot alone holds both bonuses, the balance is untouched, and the claims name the order
    assert _items("c_b1", "PTS#BALANCE") == before
    lot = _lot("c_b1", "P-1")
    assert (lot["folded"], lot["bonus"], lot["omni_period"]) == (False, 150, "2026-11")
    claims = {(c["sk"], c["order_id"]) for c in _items("c_b1", "PTS#BONUS#")}
    assert claims == {
        ("PTS#BONUS#first_channel_purchase#pos", "P-1"),
        ("PTS#BONUS#omnichannel#2026-11", "P-1"),
    }
    assert assert_invariant("c_b1")["lifetime_earned"] == 170
    # And once a transaction folds it, the month's omnichannel bonus is in the balance's history
    svc.redeem("c_b1", 5, "k1", "web", None)
    (balance,) = _items("c_b1", "PTS#BALANCE")
    assert balance["omni_periods"] == ["2026-11"]
    # so an order in a third channel that month claims only its first-channel bonus (no failed claim)
    monkeypatch.setattr(table_module, "CAPACITY", capacity := Capacity())
    assert svc.apply(_order("c_b1", "C-2", 10, channel=Channel.CHAT, occurred_at=MATURED)) == "earned"
    assert capacity.failed_writes == 0
    assert _lot("c_b1", "C-2")["bonus"] == 50
    seen = assert_invariant("c_b1")
    assert (seen["available"] + seen["pending"], seen["lifetime_earned"]) == (170 - 5 + 60, 230)


def test_an_order_that_read_before_another_won_the_bonus_loses_its_claim(
    svc: PointsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a web customer, and reads that still answer as before their first in-store order
    svc.apply(_order("c_b2", "W-0", 10))
    stale = StaleReads.partition(monkeypatch, customer_pk("c_b2"))
    assert svc.apply(_order("c_b2", "P-1", 10, channel=Channel.POS)) == "earned"
    # When a second in-store order decides on that view (the bonuses look due to it too)
    assert svc.apply(_order("c_b2", "P-2", 10, channel=Channel.POS)) == "earned"
    # Then the bonuses went once, to the order that claimed them first
    assert stale.stale_reads > 0
    assert (_lot("c_b2", "P-1")["bonus"], _lot("c_b2", "P-2").get("bonus", 0)) == (150, 0)
    assert assert_invariant("c_b2")["lifetime_earned"] == 10 + 160 + 10


def test_a_redelivery_after_its_claims_keeps_the_bonus_it_won(svc: PointsService) -> None:
    # Given a web customer, and an in-store order that claimed its bonuses and then failed
    svc.apply(_order("c_b3", "W-0", 10))
    assert svc.store.claim_bonus("c_b3", "first_channel_purchase", "pos", "P-1", NOW)
    assert svc.store.claim_bonus("c_b3", "omnichannel", "2026-11", "P-1", NOW)
    # When the order is delivered again
    assert svc.apply(_order("c_b3", "P-1", 10, channel=Channel.POS)) == "earned"
    # Then it keeps the bonuses its claims won, and another order cannot win them
    assert _lot("c_b3", "P-1")["bonus"] == 150
    assert not svc.store.claim_bonus("c_b3", "omnichannel", "2026-11", "P-9", NOW)
    assert assert_invariant("c_b3")["lifetime_earned"] == 10 + 160


def test_an_earning_that_needs_a_transaction_reads_its_book_again_consistently(
    svc: PointsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an available lot not folded yet, and reads of lots that still answer so
    svc.apply(_order("c_s1", "P-0", 100, channel=Channel.POS, occurred_at=MATURED))
    stale = StaleReads.partition(monkeypatch, customer_pk("c_s1"), ("PTS#LOT#",))
    # (a redemption folds the lot into the balance meanwhile: the balance reads fresh)
    svc.redeem("c_s1", 10, "k1", "pos", None)
    assert _lot("c_s1", "P-0")["folded"] is True
    # When an order raising the tier (a transaction) first reads the stale lot beside the fresh balance
    assert svc.apply(_order("c_s1", "P-1", 950, channel=Channel.POS, occurred_at=MATURED)) == "earned"
    # Then it committed on a consistent book: the folded lot is not counted twice
    assert stale.stale_reads > 0
    assert assert_invariant("c_s1") == {"available": 1040, "pending": 0, "debt": 0, "lifetime_earned": 1050}
    assert svc.points("c_s1")["tier"] == "silver"


def test_a_refund_reads_its_book_consistently(svc: PointsService, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an order, and reads of lots that still answer as before its refund
    svc.apply(_order("c_s2", "W-1", 40))
    stale = StaleReads.partition(monkeypatch, customer_pk("c_s2"), ("PTS#LOT#",))
    refund = refund_event("c_s2", "W-1", "R-1", [("1", "SKU-A", 1)], occurred_at=NOW)
    assert svc.apply(refund) == "reversed"
    # When the same refund arrives again under another event id (the dedupe record cannot see it)
    again = refund.model_copy(update={"event": refund.event.model_copy(update={"event_id": "ev-other"})})
    # Then the lot it reads remembers the refund: nothing is reversed twice
    assert svc.apply(again) == "nothing_to_reverse"
    assert stale.stale_reads == 0
    assert assert_invariant("c_s2") == {"available": 0, "pending": 0, "debt": 0, "lifetime_earned": 0}


def test_a_stale_read_missing_a_waiting_refund_or_the_lot_is_caught_after_the_put(
    svc: PointsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer with an order, and reads that answer as before what follows
    svc.apply(_order("c_s3", "W-0", 10))
    stale = StaleReads.partition(monkeypatch, customer_pk("c_s3"))
    # When a refund arrives before its order (it waits), then the order, deciding on the stale view
    refund = refund_event("c_s3", "W-1", "R-1", [("1", "SKU-A", 1)], occurred_at=NOW)
    assert svc.apply(refund) == "refund_waiting_for_order"
    assert svc.apply(_order("c_s3", "W-1", 30)) == "earned"
    # Then its consistent read after the put applied the refund, and nothing is left waiting
    assert stale.stale_reads > 0
    assert _items("c_s3", "PTS#WAIT#") == []
    assert assert_invariant("c_s3")["pending"] == 10
    # And a redelivery whose stale read misses the lot is refused by the put: a duplicate
    assert svc.apply(_order("c_s3", "W-1", 30)) == "duplicate"
    assert assert_invariant("c_s3")["pending"] == 10


# ---------------------------------------------------------------------- properties
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(1, 400), st.sampled_from(["web", "pos", "chat"])),
        st.tuples(st.just("redeem"), st.integers(1, 120), st.just("")),
        st.tuples(st.just("refund"), st.integers(0, 5), st.just("")),
        st.tuples(st.just("redeliver"), st.integers(0, 5), st.just("")),
        st.tuples(st.just("freeze"), st.just(0), st.just("")),
        st.tuples(st.just("advance"), st.integers(1, 40), st.just("")),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, stale=st.sampled_from([("",), ("PTS#LOT#",), ("PTS#BALANCE",)]))
def test_the_ledger_holds_and_each_bonus_goes_once_under_stale_reads(
    svc: PointsService, steps: list[tuple[str, int, str]], stale: tuple[str, ...]
) -> None:
    clock = svc.clock
    assert isinstance(clock, Clock)
    customer = f"c_{uuid.uuid4().hex}"
    clock.now = NOW
    orders: list[Any] = []
    try:
        with pytest.MonkeyPatch.context() as patch:
            reads = StaleReads.partition(patch, customer_pk(customer), stale)
            for n, (kind, value, channel) in enumerate(steps):
                if kind == "order":
                    orders.append(
                        _order(customer, f"O-{n}", value, channel=Channel(channel), occurred_at=MATURED)
                    )
                    assert svc.apply(orders[-1]) == "earned"
                elif kind == "redeem":
                    with contextlib.suppress(Unprocessable):
                        svc.redeem(customer, value, f"k{n}", "pos", None)
                elif kind == "refund" and orders:
                    order_id = orders[value % len(orders)].event.payload.order_id
                    refund = refund_event(
                        customer, order_id, f"R{n}", [("1", "SKU-A", 1)], occurred_at=clock.now
                    )
                    svc.apply(refund)
                elif kind == "redeliver" and orders:
                    assert svc.apply(orders[value % len(orders)]) == "duplicate"
                elif kind == "freeze":
                    reads.freeze()
                elif kind == "advance":
                    clock.now += timedelta(days=value)
                # the ledger's sum, every step; and each history bonus once per channel / month
                assert_invariant(customer)
                lots = _items(customer, "PTS#LOT#")
                firsts = [
                    lot["channel"]
                    for lot in lots
                    if "first-purchase-new-channel" in lot.get("bonus_rule_ids", [])
                ]
                assert len(firsts) == len(set(firsts))
                assert len([lot for lot in lots if lot.get("omni_period")]) <= 1
    finally:
        purge(customer)
