"""Stock on the local stack: a store sale and a web order move the figures the API shows; a
reservation holds stock and, when DynamoDB TTL removes it, the stream gives the units back."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from devstack.stack import LocalStack
from tests.support.lambdas import load_event

pytestmark = pytest.mark.e2e
STORE = "MAD-SOL"
WEB = "WEB-FULFILMENT"


def _receive(stack: LocalStack, uid: str, sku: str, location: str, units: int) -> None:
    doc = {
        "message_id": f"GRN-{uid}-{location}",
        "type": "receipt",
        "location_id": location,
        "occurred_at": "2026-11-01T08:00:00+00:00",
        "lines": [{"sku": sku, "quantity": units}],
    }
    assert stack.post_webhook("stock", doc).status == 202


def _stock(stack: LocalStack, sku: str) -> dict[str, Any]:
    resp = stack.api("GET", f"/stock/{sku}", staff=False)
    assert resp.status == 200, resp.body
    body: dict[str, Any] = resp.json()
    return body


def _at(body: dict[str, Any], location: str) -> dict[str, Any]:
    return next(loc for loc in body["locations"] if loc["location_id"] == location)


def test_store_sale_and_web_order_move_the_availability_the_api_shows(
    local_stack: LocalStack, uid: str
) -> None:
    # Given 5 units in the store and 4 in the web warehouse
    sku = f"SKU-E2E-{uid}"
    _receive(local_stack, uid, sku, STORE, 5)
    _receive(local_stack, uid, sku, WEB, 4)
    local_stack.wait_quiet()
    assert (_stock(local_stack, sku)["available"], _stock(local_stack, sku)["online_available"]) == (9, 4)
    # When the store sells 2 at the till and a web order takes 1
    sale = load_event("webhooks/pos_sale.json")
    sale.update(ticket_id=f"T-{uid}", lines=[{"line_no": 1, "sku": sku, "qty": 2, "unit_price": "10.00"}])
    sale["total"] = "20.00"
    assert local_stack.post_webhook("pos", sale).status == 202
    order = copy.deepcopy(load_event("webhooks/web_order_created.json"))
    order["id"] = f"wh-{uid}"
    order["data"].update(
        order_id=f"W-{uid}",
        total_price="10.00",
        line_items=[{"id": "1", "sku": sku, "quantity": 1, "price": "10.00"}],
        fulfilment={"method": "ship", "location_id": WEB},
    )
    assert local_stack.post_webhook("web", order).status == 202
    local_stack.wait_quiet()
    # Then the store shows 3, online shows 3, and the total 6
    body = _stock(local_stack, sku)
    assert _at(body, STORE)["available"] == 3
    assert body["online_available"] == 3
    assert body["available"] == 6


def test_reservation_holds_then_ttl_expiry_gives_the_units_back(local_stack: LocalStack, uid: str) -> None:
    # Given a customer and 3 units at the store
    sku = f"SKU-RES-{uid}"
    customer = f"c_e2e{uid}"
    local_stack.dynamodb.put_item(
        TableName=local_stack.table_name,
        Item={
            "pk": {"S": f"CUST#{customer}"},
            "sk": {"S": "PROFILE"},
            "entity": {"S": "profile"},
            "customer_id": {"S": customer},
        },
    )
    _receive(local_stack, uid, sku, STORE, 3)
    local_stack.wait_quiet()
    # When the customer reserves 2 for click and collect
    request = {"customer_id": customer, "sku": sku, "quantity": 2, "location_id": STORE}
    resp = local_stack.api("POST", "/reservations", request, headers={"Idempotency-Key": uid})
    assert resp.status == 201, resp.body
    rid = resp.json()["reservation_id"]
    local_stack.wait_quiet()
    # Then the store shows 1 available, 2 reserved
    store = _at(_stock(local_stack, sku), STORE)
    assert (store["available"], store["reserved"]) == (1, 2)
    # When the hold and its grace are over and DynamoDB TTL deletes the reservation
    assert local_stack.sweep_ttl(now=time.time() + 73 * 3600) >= 1
    local_stack.wait_quiet()
    # Then the stream's REMOVE released the units
    store = _at(_stock(local_stack, sku), STORE)
    assert (store["available"], store["reserved"]) == (3, 0)
    assert local_stack.api("GET", f"/reservations/{rid}").status == 404
