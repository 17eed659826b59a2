"""Shopify webhooks (online store and Shopify POS) -> channel ``web``, or ``pos`` for a POS sale.

Signature: ``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the raw body with the app's client
secret. The topic is ``X-Shopify-Topic``; ``X-Shopify-Webhook-Id`` is the delivery id (the same on
every retry); a delivery whose ``X-Shopify-Triggered-At`` is older than ``MAX_AGE_S`` (Shopify's
own retry horizon) or in the future beyond the tolerance is refused as a replay.

Topics: orders/create (order.placed; a POS order is already paid: order.completed at the store
its ``location_id`` maps to), orders/paid (order.completed), orders/cancelled, refunds/create
(order.refunded of exactly its ``refund_line_items``; restocked at their ``location_id`` unless
``restock_type`` is ``no_restock``), customers/create and customers/update (consents from
``email_marketing_consent`` / ``sms_marketing_consent``). Money is read from the ``*_set``
blocks (shop currency); ids are integers, kept as strings. Any other topic: 422.
An order's events are keyed on (order id, kind), so orders/create + orders/paid of one POS sale,
or a redelivery under a new webhook id, record the sale once.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from loyalty.errors import Unauthorized, Unprocessable
from loyalty.ingest.providers import Connector, Delivery, body_hmac_matches, identifiers_of
from loyalty.models.events import (
    CancelPayload,
    Channel,
    ChannelEvent,
    Consent,
    EventType,
    OrderLine,
    OrderPayload,
    ProfilePayload,
    RefundLine,
    RefundPayload,
    event_id_for,
)
from loyalty.models.identifiers import IdentifierType

SIGNATURE_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
TRIGGERED_AT_HEADER = "x-shopify-triggered-at"
MAX_AGE_S = 48 * 3600
ONLINE_LOCATION = "WEB-FULFILMENT"
TOPICS = (
    "orders/create",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
    "customers/create",
    "customers/update",
)


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")


class Money(_Model):
    amount: Decimal = Field(ge=0)
    currency_code: str


class MoneySet(_Model):
    shop_money: Money


class MarketingConsent(_Model):
    state: str | None = None


class Customer(_Model):
    id: int | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    verified_email: bool | None = None
    email_marketing_consent: MarketingConsent | None = None
    sms_marketing_consent: MarketingConsent | None = None


class LineItem(_Model):
    id: int
    sku: str | None = None
    variant_id: int | None = None
    product_id: int | None = None
    quantity: int = Field(ge=1)
    price_set: MoneySet
    product_type: str | None = None


class Order(_Model):
    id: int
    created_at: AwareDatetime
    email: str | None = None
    phone: str | None = None
    source_name: str | None = None
    location_id: int | None = None
    gateway: str | None = None
    payment_gateway_names: list[str] = Field(default_factory=list)
    cancel_reason: str | None = None
    cancelled_at: AwareDatetime | None = None
    total_price_set: MoneySet
    line_items: list[LineItem] = Field(min_length=1)
    customer: Customer | None = None


class RefundLineItem(_Model):
    id: int
    line_item_id: int
    quantity: int = Field(ge=1)
    restock_type: str | None = None
    location_id: int | None = None
    subtotal_set: MoneySet
    line_item: LineItem | None = None


class Refund(_Model):
    id: int
    order_id: int
    created_at: AwareDatetime
    refund_line_items: list[RefundLineItem] = Field(default_factory=list)


def _timestamp(raw: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def verify(delivery: Delivery, now: float, tolerance_s: int) -> None:
    raw = delivery.header(SIGNATURE_HEADER)
    if not raw:
        raise Unauthorized("missing X-Shopify-Hmac-Sha256", code="signature_missing")
    try:
        offered = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise Unauthorized("X-Shopify-Hmac-Sha256 is not base64", code="signature_malformed") from None
    if not body_hmac_matches(offered, delivery.secrets.secrets, delivery.body):
        raise Unauthorized("signature does not match", code="signature_invalid")
    triggered = delivery.header(TRIGGERED_AT_HEADER)
    if triggered:
        at = _timestamp(triggered)
        if at is None:
            raise Unauthorized("X-Shopify-Triggered-At is not a timestamp", code="signature_malformed")
        age = now - at.timestamp()
        if age > MAX_AGE_S or age < -tolerance_s:
            raise Unauthorized(
                "X-Shopify-Triggered-At is outside the replay window", code="signature_expired"
            )


def _sku(line: LineItem) -> str:
    return (line.sku or "").strip() or f"variant-{line.variant_id or line.product_id or line.id}"


def _identifiers(*people: Customer | Order | None) -> list[Any]:
    pairs: list[tuple[IdentifierType, str | None]] = []
    for who in people:
        if who is not None:
            pairs += [(IdentifierType.EMAIL, who.email), (IdentifierType.PHONE, who.phone)]
    return identifiers_of(*pairs)


def _location(delivery: Delivery, location_id: int | None) -> str | None:
    if location_id is None:
        return None
    return delivery.secrets.locations.get(str(location_id), f"shopify-{location_id}")


def _order_type(topic: str, pos: bool) -> EventType:
    """orders/cancelled: cancelled; orders/paid or any POS order (paid at the till): completed."""
    if topic == "orders/cancelled":
        return EventType.ORDER_CANCELLED
    return EventType.ORDER_COMPLETED if topic == "orders/paid" or pos else EventType.ORDER_PLACED


def _payment_method(order: Order) -> str | None:
    return (order.gateway or next(iter(order.payment_gateway_names), ""))[:32] or None


def _order_payload(order: Order, store: str | None, pos: bool) -> OrderPayload:
    total = order.total_price_set.shop_money
    return OrderPayload(
        order_id=str(order.id),
        currency=total.currency_code,
        total=total.amount,
        payment_method=_payment_method(order),
        store_id=store,
        location_id=store or ONLINE_LOCATION,
        fulfilment="in_store" if pos else "ship",
        lines=[
            OrderLine(
                line_id=str(li.id),
                sku=_sku(li),
                quantity=li.quantity,
                unit_price=li.price_set.shop_money.amount,
                category=(li.product_type or "")[:64] or None,
            )
            for li in order.line_items
        ],
    )


def _order_events(topic: str, order: Order, delivery: Delivery) -> list[ChannelEvent]:
    pos = (order.source_name or "").lower() == "pos"
    channel = Channel.POS if pos else Channel.WEB
    event_type = _order_type(topic, pos)
    payload: OrderPayload | CancelPayload
    occurred = order.created_at
    if event_type is EventType.ORDER_CANCELLED:
        payload = CancelPayload(order_id=str(order.id), reason=(order.cancel_reason or "")[:256] or None)
        occurred = order.cancelled_at or order.created_at
    else:
        payload = _order_payload(order, _location(delivery, order.location_id) if pos else None, pos)
    return [
        ChannelEvent(
            event_id=event_id_for(channel, f"shopify:order:{order.id}", event_type.value),
            channel=channel,
            type=event_type,
            occurred_at=occurred,
            received_at=delivery.received_at,
            source_event_id=delivery.header(WEBHOOK_ID_HEADER) or f"shopify:order:{order.id}",
            identifiers=_identifiers(order.customer, order),
            payload=payload,
        )
    ]


def _refund_events(refund: Refund, delivery: Delivery) -> list[ChannelEvent]:
    lines = refund.refund_line_items
    currencies = {rl.subtotal_set.shop_money.currency_code for rl in lines}
    if len(currencies) > 1:
        raise ValueError("a refund's lines must share one currency")
    restock = {
        rl.location_id for rl in lines if rl.restock_type not in (None, "no_restock") and rl.location_id
    }
    payload = RefundPayload(
        order_id=str(refund.order_id),
        refund_id=str(refund.id),
        currency=currencies.pop() if currencies else "XXX",
        amount=sum((rl.subtotal_set.shop_money.amount for rl in lines), Decimal(0)),
        lines=[
            RefundLine(
                line_id=str(rl.line_item_id),
                sku=_sku(rl.line_item) if rl.line_item else f"line-{rl.line_item_id}",
                quantity=rl.quantity,
                amount=rl.subtotal_set.shop_money.amount,
            )
            for rl in lines
        ],
        restock_location_id=_location(delivery, restock.pop()) if len(restock) == 1 else None,
    )
    return [
        ChannelEvent(
            event_id=event_id_for(Channel.WEB, f"shopify:refund:{refund.id}"),
            channel=Channel.WEB,
            type=EventType.ORDER_REFUNDED,
            occurred_at=refund.created_at,
            received_at=delivery.received_at,
            source_event_id=delivery.header(WEBHOOK_ID_HEADER) or f"shopify:refund:{refund.id}",
            payload=payload,
        )
    ]


def _consents(customer: Customer) -> list[Consent]:
    consents = []
    for channel, consent in (
        ("email", customer.email_marketing_consent),
        ("sms", customer.sms_marketing_consent),
    ):
        if consent is None or consent.state is None:
            continue
        state = consent.state.lower()
        if state in ("subscribed", "unsubscribed", "not_subscribed"):
            consents.append(
                Consent(channel=channel, granted=state == "subscribed", source=f"shopify:{state}")
            )
    return consents


def _customer_events(topic: str, customer: Customer, delivery: Delivery) -> list[ChannelEvent]:
    webhook_id = delivery.header(WEBHOOK_ID_HEADER)
    if not webhook_id:
        raise Unprocessable(
            "X-Shopify-Webhook-Id is required", code="invalid_payload", field="x-shopify-webhook-id"
        )
    return [
        ChannelEvent(
            event_id=event_id_for(Channel.WEB, f"shopify:{webhook_id}"),
            channel=Channel.WEB,
            type=EventType.CUSTOMER_REGISTERED if topic == "customers/create" else EventType.CUSTOMER_UPDATED,
            occurred_at=delivery.received_at,
            received_at=delivery.received_at,
            source_event_id=webhook_id,
            identifiers=_identifiers(customer),
            payload=ProfilePayload(
                first_name=(customer.first_name or "")[:100] or None,
                last_name=(customer.last_name or "")[:100] or None,
                verified=bool(customer.verified_email),
                consents=_consents(customer),
            ),
        )
    ]


def normalise(document: Any, delivery: Delivery) -> list[ChannelEvent]:
    topic = delivery.header(TOPIC_HEADER)
    if topic not in TOPICS:
        raise Unprocessable(
            f"unsupported Shopify topic {topic[:64]!r}", code="unsupported_topic", field="x-shopify-topic"
        )
    if topic == "refunds/create":
        return _refund_events(Refund.model_validate(document), delivery)
    if topic.startswith("customers/"):
        return _customer_events(topic, Customer.model_validate(document), delivery)
    return _order_events(topic, Order.model_validate(document), delivery)


CONNECTOR = Connector(verify=verify, normalise=normalise, ack_status=200)
