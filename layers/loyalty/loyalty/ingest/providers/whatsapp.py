"""WhatsApp Cloud API (Meta) webhooks -> channel ``chat``.

- ``GET /webhooks/whatsapp``: the verification handshake (``hub.mode=subscribe``,
  ``hub.verify_token``, ``hub.challenge``): 200 with the challenge as the whole body, else 403.
- ``POST``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>``;
  a batch ``entry[].changes[].value`` with ``messages[]`` (text, interactive, button, order, ...)
  and ``statuses[]``. Meta retries anything but 200 for days, so success answers 200.

Mapping: every inbound message is a ``chat.message`` (event id from its ``wamid``); an order
message is an ``order.placed`` with its ``product_items``; a text that is exactly STOP / BAJA is
also a ``consent.changed`` (whatsapp, granted False, ``source="whatsapp:stop"``); a ``failed``
status is a ``message.bounced`` (permanent for the error codes that mean the number cannot get
WhatsApp messages). Sent / delivered / read statuses change nothing and are skipped.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loyalty.errors import Forbidden, Unauthorized
from loyalty.ingest.providers import Connector, Delivery, body_hmac_matches, identifiers_of
from loyalty.ingest.secrets import provider_secrets
from loyalty.models.events import (
    Channel,
    ChannelEvent,
    Consent,
    DeliveryPayload,
    EventType,
    MessagePayload,
    OrderLine,
    OrderPayload,
    ProfilePayload,
    event_id_for,
)
from loyalty.models.identifiers import IdentifierType
from loyalty.observability import logger

SIGNATURE_HEADER = "x-hub-signature-256"
OPT_OUT_WORDS = frozenset({"stop", "baja"})
#: Cloud API error codes meaning the number cannot receive WhatsApp messages at all.
PERMANENT_ERRORS = frozenset({131026, 131021, 131030})
ONLINE_LOCATION = "WEB-FULFILMENT"


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")


class Profile(_Model):
    name: str | None = None


class Contact(_Model):
    wa_id: str
    profile: Profile = Field(default_factory=Profile)


class Text(_Model):
    body: str = Field(default="", max_length=4096)


class Reply(_Model):
    id: str | None = None
    title: str | None = None


class Interactive(_Model):
    type: str | None = None
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Button(_Model):
    text: str | None = None
    payload: str | None = None


class ProductItem(_Model):
    product_retailer_id: str = Field(min_length=1)
    quantity: int = Field(ge=1)
    item_price: Decimal = Field(ge=0)
    currency: str


class Order(_Model):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[ProductItem] = Field(min_length=1)


class Message(_Model):
    from_: str = Field(alias="from", min_length=1)
    id: str = Field(min_length=1, max_length=256)
    timestamp: int = Field(gt=0)
    type: str
    text: Text | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    order: Order | None = None

    def words(self) -> str:
        if self.text is not None:
            return self.text.body
        if self.interactive is not None:
            reply = self.interactive.button_reply or self.interactive.list_reply
            return (reply.title or "") if reply else ""
        if self.button is not None:
            return self.button.text or self.button.payload or ""
        if self.order is not None:
            return self.order.text or ""
        return ""


class StatusError(_Model):
    code: int
    title: str | None = None
    message: str | None = None


class Status(_Model):
    id: str = Field(min_length=1, max_length=256)
    status: str
    timestamp: int = Field(gt=0)
    recipient_id: str
    errors: list[StatusError] = Field(default_factory=list)


class Value(_Model):
    messaging_product: str = "whatsapp"
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)


class Change(_Model):
    field: str
    value: Value


class Entry(_Model):
    id: str
    changes: list[Change] = Field(default_factory=list)


class Notification(_Model):
    object: str = Field(pattern="^whatsapp_business_account$")
    entry: list[Entry] = Field(min_length=1)


def handshake(params: Mapping[str, str]) -> str:
    """The challenge to echo when the verify token matches; ``Forbidden`` otherwise."""
    token = params.get("hub.verify_token") or ""
    challenge = params.get("hub.challenge") or ""
    if params.get("hub.mode") != "subscribe" or not challenge:
        raise Forbidden("not a subscription handshake", code="handshake_refused")
    expected = provider_secrets("whatsapp").verify_token or ""
    if not expected or not hmac.compare_digest(expected.encode(), token.encode()):
        raise Forbidden("verify token does not match", code="handshake_refused")
    return challenge


def verify(delivery: Delivery, now: float, tolerance_s: int) -> None:
    raw = delivery.header(SIGNATURE_HEADER)
    if not raw:
        raise Unauthorized("missing X-Hub-Signature-256", code="signature_missing")
    scheme, _, value = raw.partition("=")
    try:
        offered = bytes.fromhex(value)
    except ValueError:
        offered = b""
    if scheme != "sha256" or len(offered) != 32:
        raise Unauthorized("X-Hub-Signature-256 is not sha256=<hex>", code="signature_malformed")
    if not body_hmac_matches(offered, delivery.secrets.secrets, delivery.body):
        raise Unauthorized("signature does not match", code="signature_invalid")


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _message_events(msg: Message, names: dict[str, str], received_at: datetime) -> list[ChannelEvent]:
    identifiers = identifiers_of((IdentifierType.PHONE, f"+{msg.from_.lstrip('+')}"))
    common: dict[str, Any] = {
        "channel": Channel.CHAT,
        "occurred_at": _at(msg.timestamp),
        "received_at": received_at,
        "source_event_id": msg.id,
        "identifiers": identifiers,
    }
    text = msg.words()
    events = [
        ChannelEvent(
            **common,
            event_id=event_id_for(Channel.CHAT, msg.id),
            type=EventType.CHAT_MESSAGE,
            payload=MessagePayload(conversation_id=f"whatsapp:{msg.from_}", text=text[:4096]),
        )
    ]
    if msg.type == "order" and msg.order is not None:
        items = msg.order.product_items
        currencies = {item.currency for item in items}
        if len(currencies) != 1:
            raise ValueError("an order's product_items must share one currency")
        events.append(
            ChannelEvent(
                **common,
                event_id=event_id_for(Channel.CHAT, msg.id, "order"),
                type=EventType.ORDER_PLACED,
                payload=OrderPayload(
                    order_id=msg.id,
                    currency=currencies.pop(),
                    total=sum((i.item_price * i.quantity for i in items), Decimal(0)),
                    location_id=ONLINE_LOCATION,
                    fulfilment="ship",
                    lines=[
                        OrderLine(
                            line_id=str(n),
                            sku=item.product_retailer_id,
                            quantity=item.quantity,
                            unit_price=item.item_price,
                        )
                        for n, item in enumerate(items, start=1)
                    ],
                ),
            )
        )
    if text.strip().casefold() in OPT_OUT_WORDS:
        events.append(
            ChannelEvent(
                **common,
                event_id=event_id_for(Channel.CHAT, msg.id, "opt-out"),
                type=EventType.CONSENT_CHANGED,
                payload=ProfilePayload(
                    first_name=(names.get(msg.from_) or "")[:100] or None,
                    consents=[Consent(channel="whatsapp", granted=False, source="whatsapp:stop")],
                ),
            )
        )
    return events


def _status_event(status: Status, received_at: datetime) -> ChannelEvent | None:
    if status.status != "failed":
        return None
    codes = {e.code for e in status.errors}
    reason = "; ".join(f"{e.code} {e.title or e.message or ''}".strip() for e in status.errors) or None
    phone = f"+{status.recipient_id.lstrip('+')}"
    return ChannelEvent(
        event_id=event_id_for(Channel.CHAT, status.id, "failed"),
        channel=Channel.CHAT,
        type=EventType.MESSAGE_BOUNCED,
        occurred_at=_at(status.timestamp),
        received_at=received_at,
        source_event_id=status.id,
        identifiers=identifiers_of((IdentifierType.PHONE, phone)),
        payload=DeliveryPayload(
            channel="whatsapp",
            address=phone,
            permanent=bool(codes & PERMANENT_ERRORS),
            reason=reason[:512] if reason else None,
            provider="whatsapp",
            provider_message_id=status.id,
        ),
    )


def normalise(document: Any, delivery: Delivery) -> list[ChannelEvent]:
    note = Notification.model_validate(document)
    events: list[ChannelEvent] = []
    for entry in note.entry:
        for change in entry.changes:
            if change.field != "messages":
                logger.info("whatsapp change skipped", extra={"field": change.field})
                continue
            value = change.value
            names = {c.wa_id: c.profile.name or "" for c in value.contacts}
            for msg in value.messages:
                events.extend(_message_events(msg, names, delivery.received_at))
            for status in value.statuses:
                bounced = _status_event(status, delivery.received_at)
                if bounced is not None:
                    events.append(bounced)
    return events


CONNECTOR = Connector(verify=verify, normalise=normalise, ack_status=200)
