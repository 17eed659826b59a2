"""TTL safety net: a reservation TTL deletes while active is routed to stock and released once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.template import Resolver, load, resources_of
from loyalty.routing.router import lapsed_reservation, plan
from loyalty.settings import get_settings
from loyalty.stock.service import ReservationRequest, StockService
from loyalty.stock.store import StockStore
from tests.conftest import drain
from tests.support.lambdas import LambdaContext, load_function
from tests.support.stock import adjusted, apply_message, at, figures, message, profile, queue_event
from tests.support.streams import stream_event, stream_record

SKU = "SKU-BEANIE"
STORE = "MAD-SOL"


@pytest.fixture
def held(stack: Resolver) -> dict[str, Any]:
    profile("c_ttl")
    apply_message(message(adjusted(SKU, STORE, 4, at(0))))
    item, _ = StockService().create_reservation(
        ReservationRequest(customer_id="c_ttl", sku=SKU, quantity=3, location_id=STORE), "k"
    )
    return item


def test_ttl_remove_of_an_active_reservation_is_routed_and_released_once(
    held: dict[str, Any], stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given DynamoDB TTL deleted the reservation while it was still ready
    StockStore().table.delete(held["pk"], held["sk"])
    router = load_function("route_events")
    record = stream_record(None, held, ttl_delete=True)
    # When the router sees the REMOVE (twice: streams deliver at least once)
    assert router.handler(stream_event(record, record), lambda_context) == {"batchItemFailures": []}
    messages = drain(sqs, stack.refs["StockQueue"])
    assert [m["MessageAttributes"]["type"]["StringValue"] for m in messages] == ["reservation.lapsed"] * 2
    # Then the stock consumer releases the held units exactly once
    consumer = load_function("apply_stock_events")
    result = consumer.handler(queue_event(messages), lambda_context)
    assert result == {"batchItemFailures": []}
    stock = figures(SKU, STORE)
    assert (stock.on_hand, stock.reserved, stock.available) == (4, 0, 4)


def test_settled_reservations_and_other_items_are_not_routed(held: dict[str, Any]) -> None:
    settings = get_settings()
    for status in ("collected", "released", "expired"):
        assert plan(None, {**held, "status": status}, settings) == []
    assert plan(None, {"pk": "x", "sk": "y", "entity": "stock"}, settings) == []
    assert lapsed_reservation({**held}, held) is None  # a MODIFY is not a lapse
    ((url, msg),) = plan(None, held, settings)
    assert url == settings.stock_queue_url
    assert json.loads(msg.model_dump_json())["allocations"] == held["allocations"]


def test_a_job_release_followed_by_a_ttl_lapse_releases_once(held: dict[str, Any]) -> None:
    store = StockStore()
    assert store.settle(held, "expired")
    assert not store.release_removed(held)
    assert figures(SKU, STORE).reserved == 0


def test_the_router_filter_lets_ttl_removes_of_active_reservations_through(held: dict[str, Any]) -> None:
    filters = pytest.importorskip("devstack.filters")
    route = resources_of(load(), "AWS::Serverless::Function")["RouteEventsFunction"]
    (source,) = route["Properties"]["Events"].values()
    patterns = [json.loads(f["Pattern"]) for f in source["Properties"]["FilterCriteria"]["Filters"]]
    assert filters.matches_any(patterns, stream_record(None, held, ttl_delete=True))
    assert not filters.matches_any(patterns, stream_record(None, held))  # a user delete
    assert not filters.matches_any(
        patterns, stream_record(None, {**held, "status": "collected"}, ttl_delete=True)
    )
