"""Builders of canonical stock-moving events and readers of stock figures, for the stock tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.models import events as ev
from loyalty.models.events import Channel, ChannelEvent, EventType
from loyalty.models.reservations import LAPSED_KIND, ReservationLapsed
from loyalty.routing.router import RoutedEvent
from loyalty.stock import model
from loyalty.stock.service import StockService, Touched
from loyalty.stock.store import StockStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _event(
    kind: EventType, channel: Channel, payload: Any, when: datetime, eid: str | None = None
) -> ChannelEvent:
    return ChannelEvent(
        event_id=eid or uuid.uuid4().hex,
        channel=channel,
        type=kind,
        occurred_at=when,
        source_event_id=uuid.uuid4().hex,
        payload=payload,
    )


def order(
    order_id: str,
    lines: list[tuple[str, int]],
    location: str,
    *,
    kind: EventType = EventType.ORDER_PLACED,
    fulfilment: str = "ship",
    channel: Channel = Channel.WEB,
    when: datetime = T0,
) -> ChannelEvent:
    payload = ev.OrderPayload(
        order_id=order_id,
        currency="EUR",
        total=Decimal(10),
        location_id=location,
        fulfilment=fulfilment,
        store_id=location if fulfilment == "in_store" else None,
        lines=[
            ev.OrderLine(line_id=str(i + 1), sku=sku, quantity=q, unit_price=Decimal(5))
            for i, (sku, q) in enumerate(lines)
        ],
    )
    return _event(kind, channel, payload, when)


def pos_sale(ticket: str, sku: str, qty: int, store: str, when: datetime = T0) -> ChannelEvent:
    return order(
        ticket,
        [(sku, qty)],
        store,
        kind=EventType.ORDER_COMPLETED,
        fulfilment="in_store",
        channel=Channel.POS,
        when=when,
    )


def cancel(order_id: str, *, channel: Channel = Channel.WEB, when: datetime = T0) -> ChannelEvent:
    return _event(EventType.ORDER_CANCELLED, channel, ev.CancelPayload(order_id=order_id), when)


def refund(order_id: str, sku: str, qty: int, restock: str | None, when: datetime = T0) -> ChannelEvent:
    payload = ev.RefundPayload(
        order_id=order_id,
        refund_id=uuid.uuid4().hex,
        currency="EUR",
        amount=Decimal(5),
        restock_location_id=restock,
        lines=[ev.RefundLine(line_id="1", sku=sku, quantity=qty, amount=Decimal(5))],
    )
    return _event(EventType.ORDER_REFUNDED, Channel.POS, payload, when)


def counted(sku: str, location: str, qty: int, when: datetime) -> ChannelEvent:
    payload = ev.StockPayload(location_id=location, sku=sku, quantity=qty, counted_at=when)
    return _event(EventType.STOCK_COUNTED, Channel.STOCK, payload, when + timedelta(minutes=5))


def adjusted(
    sku: str, location: str, delta: int, when: datetime = T0, reason: str = "receipt"
) -> ChannelEvent:
    payload = ev.StockPayload(location_id=location, sku=sku, quantity=delta, reason=reason)
    return _event(EventType.STOCK_ADJUSTED, Channel.STOCK, payload, when)


def message(event: ChannelEvent) -> str:
    return RoutedEvent(stage="recorded", event=event).model_dump_json()


def apply_message(body: str, kind: str | None = None) -> Touched:
    """What the stock consumer does with one message (a service of its own, as per invocation)."""
    return StockService().apply(body, kind)


def apply_lapsed(reservation: dict[str, Any]) -> Touched:
    """What the stock consumer does with the router's message for a reservation TTL removed."""
    return apply_message(ReservationLapsed.model_validate(reservation).model_dump_json(), LAPSED_KIND)


def queue_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The SQS event Lambda delivers for messages drained from a queue (bodies and attributes)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {
                    name: {"stringValue": a["StringValue"], "dataType": a["DataType"]}
                    for name, a in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:q",
                "awsRegion": "eu-west-1",
            }
            for m in messages
        ]
    }


def figures(sku: str, location: str, store: StockStore | None = None) -> model.LocationStock:
    store = store or StockStore()
    return model.LocationStock.of(location, store.shards(sku, location))


def collection(sku: str, entity: str, store: StockStore | None = None) -> list[dict[str, Any]]:
    store = store or StockStore()
    return [i for i in store.table.query_all(model.sku_pk(sku)) if i.get("entity") == entity]


def profile(customer_id: str, store: StockStore | None = None) -> None:
    store = store or StockStore()
    store.table.put(
        {"pk": f"CUST#{customer_id}", "sk": "PROFILE", "entity": "profile", "customer_id": customer_id}
    )
