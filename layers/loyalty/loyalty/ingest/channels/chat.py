"""WhatsApp / social chat: messages, chat orders and opt-in/opt-out, identified by phone or handle."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from loyalty.models.events import (
    Channel,
    ChannelEvent,
    Consent,
    EventType,
    MessagePayload,
    OrderLine,
    OrderPayload,
    ProfilePayload,
    event_id_for,
)
from loyalty.models.identifiers import Identifier, IdentifierType


class Sender(BaseModel):
    model_config = ConfigDict(defer_build=True)
    phone: str | None = None
    handle: str | None = None
    name: str | None = None


class Text(BaseModel):
    model_config = ConfigDict(defer_build=True)
    body: str = Field(max_length=4096)


class ChatItem(BaseModel):
    model_config = ConfigDict(defer_build=True)
    sku: str
    quantity: int = Field(ge=1)
    item_price: Decimal = Field(ge=0)


class ChatOrder(BaseModel):
    model_config = ConfigDict(defer_build=True)
    order_id: str = Field(min_length=1)
    status: Literal["placed", "paid"]
    currency: str
    total: Decimal = Field(ge=0)
    items: list[ChatItem] = Field(min_length=1)
    location_id: str = "WEB-FULFILMENT"
    fulfilment: Literal["ship", "collect"] = "ship"
    payment_method: str | None = None


class ChatDelivery(BaseModel):
    model_config = ConfigDict(defer_build=True)
    message_id: str = Field(min_length=1)
    platform: Literal["whatsapp", "instagram", "facebook"]
    conversation_id: str = Field(min_length=1)
    timestamp: AwareDatetime
    sender: Sender = Field(alias="from")
    type: Literal["text", "order", "opt_in", "opt_out"]
    text: Text | None = None
    order: ChatOrder | None = None

    @model_validator(mode="after")
    def _shape(self) -> ChatDelivery:
        if not (self.sender.phone or self.sender.handle):
            raise ValueError("from needs a phone or a handle")
        if self.type == "text" and self.text is None:
            raise ValueError("a text message needs text")
        if self.type == "order" and self.order is None:
            raise ValueError("an order message needs order")
        return self


def normalise(document: Any, received_at: datetime) -> list[ChannelEvent]:
    msg = ChatDelivery.model_validate(document)
    identifiers = []
    if msg.sender.phone:
        identifiers.append(Identifier(type=IdentifierType.PHONE, value=msg.sender.phone))
    if msg.sender.handle:
        identifiers.append(
            Identifier(type=IdentifierType.SOCIAL_HANDLE, value=f"{msg.platform}:{msg.sender.handle}")
        )
    payload: MessagePayload | OrderPayload | ProfilePayload
    if msg.type == "order":
        assert msg.order is not None
        order = msg.order
        event_type = EventType.ORDER_COMPLETED if order.status == "paid" else EventType.ORDER_PLACED
        payload = OrderPayload(
            order_id=order.order_id,
            currency=order.currency,
            total=order.total,
            payment_method=order.payment_method,
            location_id=order.location_id,
            fulfilment=order.fulfilment,
            lines=[
                OrderLine(line_id=str(i), sku=item.sku, quantity=item.quantity, unit_price=item.item_price)
                for i, item in enumerate(order.items, start=1)
            ],
        )
    elif msg.type in ("opt_in", "opt_out") and msg.platform == "whatsapp":
        event_type = EventType.CONSENT_CHANGED
        payload = ProfilePayload(
            first_name=msg.sender.name,
            consents=[Consent(channel="whatsapp", granted=msg.type == "opt_in", source="chat")],
        )
    else:
        event_type = EventType.CHAT_MESSAGE
        payload = MessagePayload(conversation_id=msg.conversation_id, text=msg.text.body if msg.text else "")
    return [
        ChannelEvent(
            event_id=event_id_for(Channel.CHAT, msg.message_id),
            channel=Channel.CHAT,
            type=event_type,
            occurred_at=msg.timestamp,
            received_at=received_at,
            source_event_id=msg.message_id,
            identifiers=identifiers,
            payload=payload,
        )
    ]
