"""Stock events: sales, orders, cancels, returns, counts and deltas, each applied exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.models.events import Channel, EventType
from loyalty.stock import model
from loyalty.store.table import Table
from tests.support.lambdas import LambdaContext, load_function, sqs_event
from tests.support.stock import (
    adjusted,
    apply_message,
    at,
    cancel,
    collection,
    counted,
    figures,
    message,
    order,
    pos_sale,
    refund,
)

SKU = "SKU-JACKET-M"
STORE = "MAD-SOL"
WEB = "WEB-FULFILMENT"


def given_stock(sku: str, location: str, units: int, minutes: int = -60) -> None:
    apply_message(message(adjusted(sku, location, units, at(minutes))))


def test_pos_sale_lowers_that_store_only(stack: Resolver) -> None:
    given_stock(SKU, STORE, 5)
    given_stock(SKU, WEB, 7)
    apply_message(message(pos_sale("T-1", SKU, 2, STORE, at(1))))
    assert (figures(SKU, STORE).on_hand, figures(SKU, STORE).available) == (3, 3)
    assert figures(SKU, WEB).on_hand == 7


def test_web_order_is_taken_at_placement_and_not_again_when_paid(stack: Resolver) -> None:
    given_stock(SKU, WEB, 5)
    apply_message(message(order("W-1", [(SKU, 2)], WEB, kind=EventType.ORDER_PLACED, when=at(1))))
    apply_message(message(order("W-1", [(SKU, 2)], WEB, kind=EventType.ORDER_COMPLETED, when=at(2))))
    assert figures(SKU, WEB).on_hand == 3


def test_chat_order_arriving_already_paid_is_taken_once(stack: Resolver) -> None:
    given_stock(SKU, STORE, 4)
    event = order(
        "C-9", [(SKU, 1)], STORE, kind=EventType.ORDER_COMPLETED, fulfilment="collect", channel=Channel.CHAT
    )
    apply_message(message(event))
    assert figures(SKU, STORE).on_hand == 3


def test_same_event_twice_is_applied_once(stack: Resolver) -> None:
    given_stock(SKU, STORE, 5)
    sale = message(pos_sale("T-2", SKU, 2, STORE, at(1)))
    receipt = message(adjusted(SKU, STORE, 10, at(2)))
    for body in (sale, sale, receipt, receipt):
        apply_message(body)
    assert figures(SKU, STORE).on_hand == 13


def test_cancel_restores_what_the_order_took(stack: Resolver) -> None:
    given_stock(SKU, WEB, 3)
    apply_message(message(order("W-2", [(SKU, 2)], WEB, when=at(1))))
    apply_message(message(cancel("W-2", when=at(2))))
    apply_message(message(cancel("W-2", when=at(3))))
    assert figures(SKU, WEB).on_hand == 3


def test_cancel_before_the_order_arrives_makes_the_order_a_no_op(stack: Resolver) -> None:
    given_stock(SKU, WEB, 3)
    apply_message(message(cancel("W-3", when=at(2))))
    apply_message(message(order("W-3", [(SKU, 2)], WEB, when=at(1))))
    assert figures(SKU, WEB).on_hand == 3


def test_refund_restocks_only_when_a_restock_location_is_given(stack: Resolver) -> None:
    given_stock(SKU, STORE, 1)
    apply_message(message(refund("T-1", SKU, 1, STORE, at(1))))
    apply_message(message(refund("T-1", SKU, 1, None, at(2))))
    assert figures(SKU, STORE).on_hand == 2


def test_order_for_more_than_available_takes_what_exists_and_records_a_shortfall(stack: Resolver) -> None:
    # Given 2 units online
    given_stock(SKU, WEB, 2)
    # When an order for 5 arrives
    apply_message(message(order("W-4", [(SKU, 5)], WEB, when=at(1))))
    # Then stock stops at zero and the 3 missing units are a shortfall (backorder)
    stock = figures(SKU, WEB)
    assert (stock.on_hand, stock.available) == (0, 0)
    (short,) = collection(SKU, model.SHORTFALL_ENTITY)
    assert (short["units"], short["location_id"]) == (3, WEB)
    # and cancelling gives back only what was taken
    apply_message(message(cancel("W-4", when=at(2))))
    assert figures(SKU, WEB).on_hand == 2


def test_negative_adjustment_never_drives_stock_below_zero(stack: Resolver) -> None:
    given_stock(SKU, STORE, 2)
    apply_message(message(adjusted(SKU, STORE, -5, at(1), reason="shrinkage")))
    assert figures(SKU, STORE).on_hand == 0
    assert [s["units"] for s in collection(SKU, model.SHORTFALL_ENTITY)] == [3]


def test_count_sets_the_absolute_figure(stack: Resolver) -> None:
    given_stock(SKU, STORE, 5)
    apply_message(message(counted(SKU, STORE, 9, at(10))))
    stock = figures(SKU, STORE)
    assert stock.on_hand == 9
    assert stock.counted_at == model.stamp(at(10))


def test_older_count_never_overwrites_a_newer_one(stack: Resolver) -> None:
    apply_message(message(counted(SKU, STORE, 9, at(10))))
    apply_message(message(counted(SKU, STORE, 4, at(5))))
    assert figures(SKU, STORE).on_hand == 9


def test_sale_after_the_count_time_that_arrived_before_the_count_is_still_reflected(stack: Resolver) -> None:
    # Given a sale at 10:20 was applied, then a count taken at 10:10 arrives late
    given_stock(SKU, STORE, 20)
    apply_message(message(pos_sale("T-5", SKU, 2, STORE, at(20))))
    apply_message(message(counted(SKU, STORE, 10, at(10))))
    # Then on hand = the count minus the later sale
    assert figures(SKU, STORE).on_hand == 8


def test_sale_stamped_before_the_count_that_arrives_after_it_is_inside_the_count(stack: Resolver) -> None:
    apply_message(message(counted(SKU, STORE, 10, at(10))))
    apply_message(message(pos_sale("T-6", SKU, 2, STORE, at(5))))
    apply_message(message(pos_sale("T-7", SKU, 1, STORE, at(15))))
    assert figures(SKU, STORE).on_hand == 9


def test_signals_out_of_stock_back_in_stock_and_low_stock(stack: Resolver) -> None:
    given_stock(SKU, STORE, 6)
    apply_message(message(pos_sale("T-8", SKU, 4, STORE, at(1))))  # 2 left: low (threshold 3)
    apply_message(message(pos_sale("T-9", SKU, 2, STORE, at(2))))  # 0: out of stock
    apply_message(message(adjusted(SKU, STORE, 10, at(3))))  # back in stock
    signals = [(s["signal"], s["location_id"]) for s in collection(SKU, model.SIGNAL_ENTITY)]
    assert sorted(signals) == sorted(
        [("low_stock", STORE), ("out_of_stock", STORE), ("back_in_stock", STORE)]
    )


def test_online_aggregate_signals_use_the_online_location_id(stack: Resolver) -> None:
    given_stock(SKU, WEB, 1)
    apply_message(message(order("W-5", [(SKU, 1)], WEB, when=at(1))))
    locations = {
        s["location_id"] for s in collection(SKU, model.SIGNAL_ENTITY) if s["signal"] == "out_of_stock"
    }
    assert locations == {WEB, model.ONLINE}


def test_the_online_sum_reads_its_signal_state_only(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    # ONLINE has no shard of its own: its figure is the online locations' sum, its META the state
    given_stock(SKU, WEB, 1)
    read: list[tuple[str, str]] = []
    real = Table.batch_get

    def batch_get(self: Table, keys: Any, **kwargs: Any) -> Any:
        read.extend(keys)
        return real(self, keys, **kwargs)

    monkeypatch.setattr(Table, "batch_get", batch_get)
    apply_message(message(order("W-6", [(SKU, 1)], WEB, when=at(1))))  # 0 left online
    apply_message(message(adjusted(SKU, WEB, 4, at(2))))  # back
    signals = [(s["signal"], s["location_id"]) for s in collection(SKU, model.SIGNAL_ENTITY)]
    online = sorted(signal for signal, loc in signals if loc == model.ONLINE)
    assert online == sorted(signal for signal, loc in signals if loc == WEB)  # the one online location
    assert {"out_of_stock", "back_in_stock"} <= set(online)
    assert (model.sku_pk(SKU), model.meta_sk(model.ONLINE)) in read
    assert (model.sku_pk(SKU), model.shard_sk(model.ONLINE, 0)) not in read


def test_handler_fails_only_the_bad_record(stack: Resolver, lambda_context: LambdaContext) -> None:
    fn = load_function("apply_stock_events")
    good = message(adjusted(SKU, STORE, 3, at(0)))
    result: dict[str, Any] = fn.handler(
        sqs_event([good, "{not json", json.dumps({"stage": "x"})]), lambda_context
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert figures(SKU, STORE).on_hand == 3


@pytest.mark.parametrize("body_file", ["sqs/apply_stock_events.json"])
def test_sample_event_for_sam_local_is_applied(
    body_file: str, stack: Resolver, lambda_context: LambdaContext
) -> None:
    from tests.support.lambdas import load_event

    fn = load_function("apply_stock_events")
    result = fn.handler(load_event(body_file), lambda_context)
    assert result == {"batchItemFailures": []}
