"""WooCommerce webhooks -> channel ``web``.

Signature: ``X-WC-Webhook-Signature`` = base64 HMAC-SHA256 of the raw body with the webhook's
secret. The topic is ``X-WC-Webhook-Topic`` (order.created, order.updated, customer.created,
customer.updated). When a webhook is saved WooCommerce first posts an UNSIGNED activation ping,
form-encoded ``webhook_id=N``: it gets exactly 200 (anything else and WooCommerce never activates
the webhook) and queues nothing.

The body is the REST API (v3) representation of the order / customer. An order's events follow
its status: pending / on-hold -> order.placed, processing / completed -> order.completed (paid),
cancelled -> order.cancelled, and each entry of ``refunds[]`` -> order.refunded (its amount; the
order payload carries no refund lines). Event ids are keyed on (order id, kind) and the refund
id, so the many order.updated deliveries of one order record each fact once.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loyalty.errors import Unauthorized, Unprocessable
from loyalty.ingest.providers import Connector, Delivery, body_hmac_matches, identifiers_of
from loyalty.models.events import (
    CancelPayload,
    Channel,
    ChannelEvent,
    EventType,
    OrderLine,
    OrderPayload,
    ProfilePayload,
    RefundPayload,
    event_id_for,
)
from loyalty.models.identifiers import IdentifierType

SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"
TOPICS = ("order.created", "order.updated", "customer.created", "customer.updated")
ONLINE_LOCATION = "WEB-FULFILMENT"
_PING = re.compile(rb"^webhook_id=\d{1,19}$")
PLACED = frozenset({"pending", "on-hold"})
PAID = frozenset({"processing", "completed"})


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")


class Contact(_Model):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class LineItem(_Model):
    id: int
    sku: str | None = None
    product_id: int | None = None
    variation_id: int | None = None
    quantity: int = Field(ge=1)
    price: Decimal = Field(ge=0)


class RefundRef(_Model):
    id: int
    total: Decimal
    reason: str | None = None


class Order(_Model):
    id: int
    status: str
    currency: str
    total: Decimal = Field(ge=0)
    date_created_gmt: datetime
    date_modified_gmt: datetime | None = None
    payment_method: str | None = None
    billing: Contact = Field(default_factory=Contact)
    line_items: list[LineItem] = Field(default_factory=list)
    refunds: list[RefundRef] = Field(default_factory=list)


class Customer(_Model):
    id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    date_modified_gmt: datetime | None = None
    billing: Contact = Field(default_factory=Contact)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_ping(delivery: Delivery) -> bool:
    media = delivery.header("content-type").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded" and bool(_PING.match(delivery.body.strip()))


def verify(delivery: Delivery, now: float, tolerance_s: int) -> None:
    raw = delivery.header(SIGNATURE_HEADER)
    if not raw:
        raise Unauthorized("missing X-WC-Webhook-Signature", code="signature_missing")
    try:
        offered = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise Unauthorized("X-WC-Webhook-Signature is not base64", code="signature_malformed") from None
    if not body_hmac_matches(offered, delivery.secrets.secrets, delivery.body):
        raise Unauthorized("signature does not match", code="signature_invalid")


def _order_events(order: Order, delivery: Delivery) -> list[ChannelEvent]:
    identifiers = identifiers_of(
        (IdentifierType.EMAIL, order.billing.email), (IdentifierType.PHONE, order.billing.phone)
    )
    common: dict[str, Any] = {
        "channel": Channel.WEB,
        "received_at": delivery.received_at,
        "identifiers": identifiers,
    }
    source = f"woocommerce:order:{order.id}"
    events: list[ChannelEvent] = []
    status = order.status.lower()
    if status in PLACED or status in PAID:
        if not order.line_items:
            raise ValueError("an order needs line_items")
        kind = EventType.ORDER_COMPLETED if status in PAID else EventType.ORDER_PLACED
        events.append(
            ChannelEvent(
                **common,
                event_id=event_id_for(Channel.WEB, source, kind.value),
                type=kind,
                occurred_at=_utc(order.date_created_gmt),
                source_event_id=source,
                payload=OrderPayload(
                    order_id=str(order.id),
                    currency=order.currency,
                    total=order.total,
                    payment_method=(order.payment_method or "")[:32] or None,
                    location_id=ONLINE_LOCATION,
                    lines=[
                        OrderLine(
                            line_id=str(li.id),
                            sku=(li.sku or "").strip()
                            or f"product-{li.variation_id or li.product_id or li.id}",
                            quantity=li.quantity,
                            unit_price=li.price,
                        )
                        for li in order.line_items
                    ],
                ),
            )
        )
    elif status == "cancelled":
        events.append(
            ChannelEvent(
                **common,
                event_id=event_id_for(Channel.WEB, source, EventType.ORDER_CANCELLED.value),
                type=EventType.ORDER_CANCELLED,
                occurred_at=_utc(order.date_modified_gmt or order.date_created_gmt),
                source_event_id=source,
                payload=CancelPayload(order_id=str(order.id)),
            )
        )
    for refund in order.refunds:
        events.append(
            ChannelEvent(
                **common,
                event_id=event_id_for(Channel.WEB, f"woocommerce:refund:{refund.id}"),
                type=EventType.ORDER_REFUNDED,
                occurred_at=_utc(order.date_modified_gmt or order.date_created_gmt),
                source_event_id=f"woocommerce:refund:{refund.id}",
                payload=RefundPayload(
                    order_id=str(order.id),
                    refund_id=str(refund.id),
                    currency=order.currency,
                    amount=abs(refund.total),
                ),
            )
        )
    return events


def _customer_events(topic: str, customer: Customer, delivery: Delivery) -> list[ChannelEvent]:
    modified = _utc(customer.date_modified_gmt) if customer.date_modified_gmt else delivery.received_at
    source = f"woocommerce:customer:{customer.id}:{modified.isoformat()}"
    return [
        ChannelEvent(
            event_id=event_id_for(Channel.WEB, source, topic),
            channel=Channel.WEB,
            type=EventType.CUSTOMER_REGISTERED if topic == "customer.created" else EventType.CUSTOMER_UPDATED,
            occurred_at=modified,
            received_at=delivery.received_at,
            source_event_id=source,
            identifiers=identifiers_of(
                (IdentifierType.EMAIL, customer.email or customer.billing.email),
                (IdentifierType.PHONE, customer.billing.phone),
            ),
            payload=ProfilePayload(
                first_name=(customer.first_name or "")[:100] or None,
                last_name=(customer.last_name or "")[:100] or None,
            ),
        )
    ]


def normalise(document: Any, delivery: Delivery) -> list[ChannelEvent]:
    topic = delivery.header(TOPIC_HEADER)
    if topic not in TOPICS:
        raise Unprocessable(
            f"unsupported WooCommerce topic {topic[:64]!r}",
            code="unsupported_topic",
            field="x-wc-webhook-topic",
        )
    if topic.startswith("customer."):
        return _customer_events(topic, Customer.model_validate(document), delivery)
    return _order_events(Order.model_validate(document), delivery)


CONNECTOR = Connector(verify=verify, normalise=normalise, ack_status=200, is_ping=is_ping)
