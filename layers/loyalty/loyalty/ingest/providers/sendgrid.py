"""SendGrid Signed Event Webhook -> channel ``email``.

Signature: ECDSA P-256 / SHA-256 over ``timestamp + raw body``, DER, base64, in
``X-Twilio-Email-Event-Webhook-Signature``; the timestamp in
``X-Twilio-Email-Event-Webhook-Timestamp`` (checked against the tolerance window, both ways).
Verified with the account's verification keys (``public_keys``: base64 DER, several for rotation).

The body is a JSON array of events (SendGrid batches them, hundreds of KB at a time). Mapping:
bounce / dropped -> ``message.bounced`` (permanent for a hard bounce or an address SendGrid drops
as bounced / invalid); unsubscribe, group_unsubscribe, spamreport -> ``consent.changed`` (email,
granted False, ``source="sendgrid:<event>"``); group_resubscribe -> granted True; open / click ->
``email.opened`` / ``email.clicked``; processed / deferred / delivered and any unknown or future
type -> logged and skipped (never fails the batch). Event ids come from ``sg_event_id`` (and
the event type: the reference's combined sample reuses one placeholder id for every type).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from loyalty.errors import Unauthorized
from loyalty.ingest.providers import Connector, Delivery, identifiers_of
from loyalty.models.events import (
    Channel,
    ChannelEvent,
    Consent,
    DeliveryPayload,
    EngagementPayload,
    EventType,
    ProfilePayload,
    event_id_for,
)
from loyalty.models.identifiers import IdentifierType
from loyalty.observability import logger

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
MAX_BODY_BYTES = 4 * 1024 * 1024
CONSENT_EVENTS = {
    "unsubscribe": False,
    "group_unsubscribe": False,
    "spamreport": False,
    "group_resubscribe": True,
}
SKIPPED_EVENTS = frozenset({"processed", "deferred", "delivered"})
PERMANENT_DROP_REASONS = ("bounced address", "invalid")


def _public_key(encoded: str) -> ec.EllipticCurvePublicKey | None:
    try:
        key = load_der_public_key(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def verify(delivery: Delivery, now: float, tolerance_s: int) -> None:
    raw_sig = delivery.header(SIGNATURE_HEADER)
    raw_ts = delivery.header(TIMESTAMP_HEADER)
    if not raw_sig or not raw_ts:
        raise Unauthorized("missing signature headers", code="signature_missing")
    if not raw_ts.isdigit() or len(raw_ts) > 12:
        raise Unauthorized("timestamp is not Unix seconds", code="signature_malformed")
    if abs(now - int(raw_ts)) > tolerance_s:
        raise Unauthorized(f"timestamp outside the {tolerance_s}s tolerance window", code="signature_expired")
    try:
        signature = base64.b64decode(raw_sig, validate=True)
    except binascii.Error:
        raise Unauthorized("signature is not base64", code="signature_malformed") from None
    signed = raw_ts.encode() + delivery.body
    for encoded in delivery.secrets.public_keys:
        key = _public_key(encoded)
        if key is None:
            logger.warning("sendgrid verification key is not an EC public key; skipped")
            continue
        try:
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return
    raise Unauthorized("signature does not match", code="signature_invalid")


class SendGridEvent(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    event: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=320)
    timestamp: int = Field(gt=0)
    sg_event_id: str = Field(min_length=1, max_length=200)
    sg_message_id: str | None = Field(default=None, max_length=256)
    reason: str | None = None
    type: str | None = Field(default=None, description="on a bounce: bounce (hard) or blocked")
    url: str | None = None
    asm_group_id: int | None = None
    category: str | list[str] | None = None
    first_name: str | None = None


_BATCH = TypeAdapter(list[dict[str, Any]])


def _campaign(event: SendGridEvent) -> str | None:
    category = event.category
    if isinstance(category, list):
        category = category[0] if category else None
    return category[:128] if category else None


def _event(esp: SendGridEvent, received_at: datetime) -> ChannelEvent | None:
    payload: DeliveryPayload | ProfilePayload | EngagementPayload
    if esp.event in ("bounce", "dropped"):
        reason = (esp.reason or "")[:512] or None
        if esp.event == "bounce":
            permanent = (esp.type or "bounce") == "bounce"
        else:
            permanent = any(word in (esp.reason or "").lower() for word in PERMANENT_DROP_REASONS)
        event_type = EventType.MESSAGE_BOUNCED
        payload = DeliveryPayload(
            channel="email",
            address=esp.email,
            permanent=permanent,
            reason=reason,
            provider="sendgrid",
            provider_message_id=esp.sg_message_id,
        )
    elif esp.event in CONSENT_EVENTS:
        event_type = EventType.CONSENT_CHANGED
        payload = ProfilePayload(
            consents=[
                Consent(channel="email", granted=CONSENT_EVENTS[esp.event], source=f"sendgrid:{esp.event}")
            ]
        )
    elif esp.event in ("open", "click"):
        event_type = EventType.EMAIL_OPENED if esp.event == "open" else EventType.EMAIL_CLICKED
        payload = EngagementPayload(campaign_id=_campaign(esp), url=(esp.url or None) and esp.url[:2048])
    else:
        return None
    return ChannelEvent(
        event_id=event_id_for(Channel.EMAIL, f"sendgrid:{esp.sg_event_id}", esp.event),
        channel=Channel.EMAIL,
        type=event_type,
        occurred_at=datetime.fromtimestamp(esp.timestamp, UTC),
        received_at=received_at,
        source_event_id=esp.sg_event_id,
        identifiers=identifiers_of((IdentifierType.EMAIL, esp.email)),
        payload=payload,
    )


def normalise(document: Any, delivery: Delivery) -> list[ChannelEvent]:
    if not isinstance(document, list) or not document:
        raise ValueError("a SendGrid delivery is a non-empty JSON array of events")
    events = []
    for raw in _BATCH.validate_python(document):
        kind = raw.get("event")
        if kind in SKIPPED_EVENTS:
            logger.info(
                "sendgrid event skipped", extra={"event": kind, "sg_event_id": raw.get("sg_event_id")}
            )
            continue
        if kind not in CONSENT_EVENTS and kind not in ("bounce", "dropped", "open", "click"):
            logger.info("sendgrid event of unknown type skipped", extra={"event": str(kind)[:64]})
            continue
        try:
            esp = SendGridEvent.model_validate(raw)
        except ValidationError as err:
            # one malformed event must not lose the batch's others (SendGrid would resend them all)
            logger.warning("sendgrid event refused", extra={"event": kind, "error": err.errors()[0]["msg"]})
            continue
        event = _event(esp, delivery.received_at)
        if event is not None and event.identifiers:
            events.append(event)
    return events


CONNECTOR = Connector(verify=verify, normalise=normalise, ack_status=200, max_body_bytes=MAX_BODY_BYTES)
