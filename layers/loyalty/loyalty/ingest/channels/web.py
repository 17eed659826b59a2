"""Online shop webhooks (Shopify-like): ``{"id", "topic", "created_at", "data"}``.

Topics: ``orders/create`` (order.placed), ``orders/paid`` (order.completed),
``orders/cancelled``, ``orders/refunded`` and ``customers/create`` / ``customers/update``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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
from loyalty.models.identifiers import Identifier, IdentifierType


class ShopCustomer(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    accepts_marketing: bool | None = None
    verified_email: bool = False


class LineItem(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str
    sku: str
    quantity: int
    price: Decimal
    product_type: str | None = None


class Fulfilment(BaseModel):
    model_config = ConfigDict(defer_build=True)
    method: Literal["ship", "collect"] = "ship"
    location_id: str = "WEB-FULFILMENT"


class ShopOrder(BaseModel):
    model_config = ConfigDict(defer_build=True)
    order_id: str
    customer: ShopCustomer = Field(default_factory=ShopCustomer)
    currency: str
    total_price: Decimal
    gateway: str | None = None
    line_items: list[LineItem] = Field(min_length=1)
    fulfilment: Fulfilment = Field(default_factory=Fulfilment)
    reason: str | None = None


class RefundLineItem(BaseModel):
    model_config = ConfigDict(defer_build=True)
    line_item_id: str
    sku: str
    quantity: int
    subtotal: Decimal


class ShopRefund(BaseModel):
    model_config = ConfigDict(defer_build=True)
    order_id: str
    refund_id: str
    customer: ShopCustomer = Field(default_factory=ShopCustomer)
    currency: str
    amount: Decimal
    refund_line_items: list[RefundLineItem] = Field(default_factory=list)
    restock_location_id: str | None = None


class OrderWebhook(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str = Field(min_length=1)
    topic: Literal["orders/create", "orders/paid", "orders/cancelled"]
    created_at: AwareDatetime
    data: ShopOrder


class RefundWebhook(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str = Field(min_length=1)
    topic: Literal["orders/refunded"]
    created_at: AwareDatetime
    data: ShopRefund


class CustomerWebhook(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str = Field(min_length=1)
    topic: Literal["customers/create", "customers/update"]
    created_at: AwareDatetime
    data: ShopCustomer


class WebDelivery(BaseModel):
    model_config = ConfigDict(defer_build=True)
    delivery: Annotated[OrderWebhook | RefundWebhook | CustomerWebhook, Field(discriminator="topic")]


def _identifiers(customer: ShopCustomer) -> list[Identifier]:
    ids = []
    if customer.email:
        ids.append(Identifier(type=IdentifierType.EMAIL, value=customer.email))
    if customer.phone:
        ids.append(Identifier(type=IdentifierType.PHONE, value=customer.phone))
    return ids


def _profile(customer: ShopCustomer) -> ProfilePayload:
    consents = []
    if customer.accepts_marketing is not None:
        consents.append(Consent(channel="email", granted=customer.accepts_marketing, source="web"))
    return ProfilePayload(
        first_name=customer.first_name,
        last_name=customer.last_name,
        locale=customer.locale,
        verified=customer.verified_email,
        consents=consents,
    )


_ORDER_TYPES = {
    "orders/create": EventType.ORDER_PLACED,
    "orders/paid": EventType.ORDER_COMPLETED,
    "orders/cancelled": EventType.ORDER_CANCELLED,
}


def normalise(document: Any, received_at: datetime) -> list[ChannelEvent]:
    hook = WebDelivery.model_validate({"delivery": document}).delivery
    common: dict[str, Any] = {
        "event_id": event_id_for(Channel.WEB, hook.id),
        "channel": Channel.WEB,
        "occurred_at": hook.created_at,
        "received_at": received_at,
        "source_event_id": hook.id,
    }
    if isinstance(hook, CustomerWebhook):
        event_type = (
            EventType.CUSTOMER_REGISTERED if hook.topic == "customers/create" else EventType.CUSTOMER_UPDATED
        )
        return [
            ChannelEvent(
                **common, type=event_type, identifiers=_identifiers(hook.data), payload=_profile(hook.data)
            )
        ]
    if isinstance(hook, RefundWebhook):
        refund = hook.data
        return [
            ChannelEvent(
                **common,
                type=EventType.ORDER_REFUNDED,
                identifiers=_identifiers(refund.customer),
                payload=RefundPayload(
                    order_id=refund.order_id,
                    refund_id=refund.refund_id,
                    currency=refund.currency,
                    amount=refund.amount,
                    lines=[
                        RefundLine(
                            line_id=li.line_item_id, sku=li.sku, quantity=li.quantity, amount=li.subtotal
                        )
                        for li in refund.refund_line_items
                    ],
                    restock_location_id=refund.restock_location_id,
                ),
            )
        ]
    order = hook.data
    event_type = _ORDER_TYPES[hook.topic]
    payload: OrderPayload | CancelPayload
    if event_type is EventType.ORDER_CANCELLED:
        payload = CancelPayload(order_id=order.order_id, reason=order.reason)
    else:
        payload = OrderPayload(
            order_id=order.order_id,
            currency=order.currency,
            total=order.total_price,
            payment_method=order.gateway,
            location_id=order.fulfilment.location_id,
            fulfilment=order.fulfilment.method,
            lines=[
                OrderLine(
                    line_id=li.id,
                    sku=li.sku,
                    quantity=li.quantity,
                    unit_price=li.price,
                    category=li.product_type,
                )
                for li in order.line_items
            ],
        )
    return [
        ChannelEvent(**common, type=event_type, identifiers=_identifiers(order.customer), payload=payload)
    ]
