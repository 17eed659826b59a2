"""The canonical event: every channel's webhook is normalised into ``ChannelEvent``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from loyalty.models.identifiers import Identifier

_EVENT_NS = uuid.UUID("6f1c3c1e-2f4b-4a59-9a57-0d7f8f0b6a11")


class Channel(StrEnum):
    WEB = "web"
    POS = "pos"
    APP = "app"
    CHAT = "chat"
    EMAIL = "email"
    STOCK = "stock"


class EventType(StrEnum):
    CUSTOMER_REGISTERED = "customer.registered"
    CUSTOMER_UPDATED = "customer.updated"
    SESSION_STARTED = "session.started"
    PRODUCT_VIEWED = "product.viewed"
    WISHLIST_ADDED = "wishlist.added"
    ORDER_PLACED = "order.placed"  # an online / chat order, not yet paid: stock is committed
    ORDER_COMPLETED = "order.completed"  # a paid sale (web paid, POS ticket, chat order paid): earns
    ORDER_CANCELLED = "order.cancelled"
    ORDER_REFUNDED = "order.refunded"  # a refund or store return of some lines
    CHAT_MESSAGE = "chat.message"
    CONSENT_CHANGED = "consent.changed"
    EMAIL_OPENED = "email.opened"
    EMAIL_CLICKED = "email.clicked"
    STOCK_COUNTED = "stock.counted"  # absolute on-hand count at a location
    STOCK_ADJUSTED = "stock.adjusted"  # a delta: receipt, transfer, shrinkage
    MESSAGE_BOUNCED = "message.bounced"  # a provider could not deliver to an address (bounce, drop)


class Money(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=4)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class OrderLine(BaseModel):
    model_config = ConfigDict(defer_build=True)
    line_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=4)
    category: str | None = Field(default=None, max_length=64)

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderPayload(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Literal["order"] = "order"
    order_id: str = Field(min_length=1, max_length=128)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: Decimal = Field(ge=0, max_digits=14, decimal_places=4)
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    payment_method: str | None = Field(default=None, max_length=32)
    store_id: str | None = Field(default=None, max_length=64, description="store of a POS sale")
    location_id: str = Field(min_length=1, max_length=64, description="where the stock leaves from")
    fulfilment: Literal["ship", "collect", "in_store"] = "ship"


class RefundLine(BaseModel):
    model_config = ConfigDict(defer_build=True)
    line_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=4)


class RefundPayload(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Literal["refund"] = "refund"
    order_id: str = Field(min_length=1, max_length=128)
    refund_id: str = Field(min_length=1, max_length=128)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=4)
    lines: list[RefundLine] = Field(default_factory=list, max_length=500)
    restock_location_id: str | None = Field(default=None, max_length=64)


class CancelPayload(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Literal["cancel"] = "cancel"
    order_id: str = Field(min_length=1, max_length=128)
    reason: str | None = Field(default=None, max_length=256)


class Consent(BaseModel):
    """Permission to contact the customer on one channel (an opt-out anywhere wins)."""

    model_config = ConfigDict(defer_build=True)

    channel: Literal["email", "sms", "push", "whatsapp"]
    granted: bool
    source: str = Field(default="", max_length=64)
    topic: Literal["points", "offers", "stock_alerts"] | None = Field(
        default=None,
        description="one marketing stream on the channel (None: all of it), kept as <channel>:<topic>",
    )


class ProfilePayload(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Literal["profile"] = "profile"
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    timezone: str | None = Field(default=None, max_length=64)
    birthday: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    postal_code: str | None = Field(default=None, max_length=16)
    verified: bool = False
    consents: list[Consent] = Field(default_factory=list, max_length=16)


class EngagementPayload(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Literal["engagement"] = "engagement"
    sku: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=2048)
    campaign_id: str | None = Field(default=None, max_length=128)
    store_id: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=32)


class MessagePayload(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Literal["message"] = "message"
    conversation_id: str = Field(min_length=1, max_length=128)
    text: str = Field(default="", max_length=4096)
    direction: Literal["inbound", "outbound"] = "inbound"


class StockPayload(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Literal["stock"] = "stock"
    location_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=-1_000_000, le=1_000_000, description="absolute count or signed delta")
    reason: str | None = Field(default=None, max_length=64)
    counted_at: AwareDatetime | None = None


class DeliveryPayload(BaseModel):
    """A provider's report that a message to one address could not be delivered.

    ``permanent`` is a hard bounce (the address does not exist or refuses us): the address is
    undeliverable until a later statement says otherwise. A transient failure (deferred, mailbox
    full) is recorded but changes nothing. Complaints are not bounces: they are ``consent.changed``.
    """

    model_config = ConfigDict(defer_build=True)

    kind: Literal["delivery"] = "delivery"
    channel: Literal["email", "sms", "push", "whatsapp"]
    address: str = Field(min_length=1, max_length=320, description="the email address or E.164 phone")
    permanent: bool
    reason: str | None = Field(default=None, max_length=512)
    provider: str = Field(min_length=1, max_length=32, description="sendgrid, ses, whatsapp, ...")
    provider_message_id: str | None = Field(default=None, max_length=256)


Payload = Annotated[
    OrderPayload
    | RefundPayload
    | CancelPayload
    | ProfilePayload
    | EngagementPayload
    | MessagePayload
    | StockPayload
    | DeliveryPayload,
    Field(discriminator="kind"),
]


def event_id_for(channel: Channel | str, source_event_id: str, suffix: str = "") -> str:
    """Deterministic event id: the same provider delivery always yields the same id (dedupe key)."""
    return str(uuid.uuid5(_EVENT_NS, f"{channel}:{source_event_id}:{suffix}"))


class ChannelEvent(BaseModel):
    """One business fact from one channel, in one shape for every consumer."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    event_id: str = Field(min_length=1, max_length=64)
    channel: Channel
    type: EventType
    occurred_at: AwareDatetime
    received_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    source_event_id: str = Field(min_length=1, max_length=256, description="the provider's delivery/event id")
    identifiers: list[Identifier] = Field(default_factory=list, max_length=20)
    payload: Payload

    @field_validator("occurred_at", "received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)
