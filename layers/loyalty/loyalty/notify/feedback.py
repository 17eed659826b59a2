"""What providers tell us after sending: bounces, complaints and inbound opt-out replies.

One queue (``NotifyFeedbackQueue``) carries every kind, each in its provider's own shape:
- SES event publishing (configuration set -> SNS -> SQS): ``Bounce`` and ``Complaint`` records;
- End User Messaging two-way SMS (-> SNS -> SQS): an inbound SMS (``originationNumber``, ...);
- the router's ``message.bounced`` events (SendGrid / WhatsApp deliveries, ``DeliveryPayload``).

Effects, each idempotent:
- a hard bounce marks the ADDRESS undeliverable on that channel (``ADDR#<channel>#<address>``,
  independent of which customer owns it, so merges do not matter); the fan-out then skips that
  channel and uses the next consented one. A soft bounce changes nothing.
- a later successful delivery to a marked address (SES ``Delivery``, newer than the mark) lifts
  the mark: the address works again (``NotifyStore.clear_undeliverable``).
- a complaint opts the address out of every marketing topic on email (a ``consent.changed``
  event, ``source="ses:complaint"``): transactional email still flows.
- an SMS STOP / BAJA opts the number out of SMS (``source="sms:stop"``); End User Messaging
  answers STOP itself and keeps its own opt-out list, so no second reply is sent from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loyalty.errors import InvalidInput
from loyalty.models.events import DeliveryPayload
from loyalty.models.identifiers import Identifier, IdentifierType, InvalidIdentifier
from loyalty.notify.catalogue import TOPICS
from loyalty.notify.preferences import Statement, record
from loyalty.notify.store import UNDELIVERABLE_ENTITY, NotifyStore, address_key, normalised_address
from loyalty.observability import logger
from loyalty.routing.router import RoutedEvent
from loyalty.store.table import Table

#: keywords that opt a number out of SMS (carriers' standard ones and Spanish BAJA)
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "BAJA", "ALTO", "PARAR"})


@dataclass(frozen=True)
class Effect:
    kind: str  # undeliverable | deliverable | complaint | sms_stop | ignored
    count: int = 0


def mark_undeliverable(
    channel: str,
    address: str,
    *,
    reason: str | None,
    provider: str,
    provider_message_id: str | None = None,
    at: datetime | None = None,
    table: Table | None = None,
) -> bool:
    """Record a hard bounce of ``address`` on ``channel``; False when it was already marked."""
    at = at or datetime.now(UTC)
    pk, sk = address_key(channel, address)
    item = {
        "pk": pk,
        "sk": sk,
        "entity": UNDELIVERABLE_ENTITY,
        "channel": channel,
        "address": normalised_address(channel, address),
        "reason": (reason or "")[:512],
        "provider": provider,
        "provider_message_id": provider_message_id,
        "at": at.astimezone(UTC).isoformat(),
    }
    new = (table or Table()).put_new({k: v for k, v in item.items() if v is not None})
    logger.info("address undeliverable", extra={"channel": channel, "provider": provider, "new": new})
    return new


def _ses_time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def _ses_bounce(record_: dict[str, Any], table: Table | None) -> Effect:
    bounce = record_.get("bounce") or {}
    if bounce.get("bounceType") != "Permanent":
        return Effect("ignored")
    at = _ses_time(bounce.get("timestamp"))
    marked = 0
    for recipient in bounce.get("bouncedRecipients") or []:
        address = recipient.get("emailAddress")
        if address:
            reason = f"{bounce.get('bounceSubType', '')} {recipient.get('diagnosticCode', '')}".strip()
            marked += mark_undeliverable(
                "email",
                str(address),
                reason=reason,
                provider="ses",
                provider_message_id=(record_.get("mail") or {}).get("messageId"),
                at=at,
                table=table,
            )
    return Effect("undeliverable", marked)


def _ses_complaint(record_: dict[str, Any], table: Table | None) -> Effect:
    complaint = record_.get("complaint") or {}
    at = _ses_time(complaint.get("timestamp"))
    feedback_id = complaint.get("feedbackId") or (record_.get("mail") or {}).get("messageId")
    count = 0
    for recipient in complaint.get("complainedRecipients") or []:
        try:
            identifier = Identifier(type=IdentifierType.EMAIL, value=str(recipient.get("emailAddress", "")))
        except InvalidIdentifier:
            continue
        record(
            identifier,
            [Statement("email", False, t) for t in TOPICS],
            source="ses:complaint",
            dedupe_key=f"ses:{feedback_id}:{identifier.value}",
            now=at,
        )
        count += 1
    return Effect("complaint", count)


def _ses_delivery(record_: dict[str, Any], table: Table | None) -> Effect:
    """A later successful delivery lifts an older hard-bounce mark of the address."""
    delivery = record_.get("delivery") or {}
    at = _ses_time(delivery.get("timestamp"))
    store = NotifyStore(table)
    cleared = sum(
        store.clear_undeliverable("email", str(address), before=at)
        for address in delivery.get("recipients") or []
        if address
    )
    if cleared:
        logger.info("address deliverable again", extra={"channel": "email", "provider": "ses"})
    return Effect("deliverable", cleared)


_SES_KINDS = {"Bounce": _ses_bounce, "Complaint": _ses_complaint, "Delivery": _ses_delivery}


def ses_event(record_: dict[str, Any], *, table: Table | None = None) -> Effect:
    """One SES event publishing record (``eventType``, or ``notificationType`` for identity notices)."""
    kind = _SES_KINDS.get(str(record_.get("eventType") or record_.get("notificationType")))
    return kind(record_, table) if kind is not None else Effect("ignored")


def inbound_sms(message: dict[str, Any]) -> Effect:
    """An End User Messaging two-way SMS payload: STOP / BAJA opts the number out of SMS."""
    words = str(message.get("messageBody") or "").strip().upper().split()
    if not words or words[0].strip(".!") not in STOP_WORDS:
        return Effect("ignored")
    try:
        identifier = Identifier(type=IdentifierType.PHONE, value=str(message.get("originationNumber", "")))
    except InvalidIdentifier:
        return Effect("ignored")
    record(
        identifier,
        [Statement("sms", False)],
        source="sms:stop",
        dedupe_key=f"sms-inbound:{message.get('inboundMessageId')}",
    )
    return Effect("sms_stop", 1)


def bounced(routed: RoutedEvent, *, table: Table | None = None) -> Effect:
    """A ``message.bounced`` event from a connector (SendGrid, WhatsApp ...)."""
    payload = routed.event.payload
    if not isinstance(payload, DeliveryPayload) or not payload.permanent:
        return Effect("ignored")
    new = mark_undeliverable(
        payload.channel,
        payload.address,
        reason=payload.reason,
        provider=payload.provider,
        provider_message_id=payload.provider_message_id,
        at=routed.event.occurred_at,
        table=table,
    )
    return Effect("undeliverable", int(new))


def handle(body: str, *, table: Table | None = None) -> Effect:
    """One feedback queue message, whichever of the three shapes it has."""
    try:
        document = json.loads(body)
    except ValueError as err:
        raise InvalidInput("feedback message is not JSON", code="invalid_feedback") from err
    if not isinstance(document, dict):
        raise InvalidInput("feedback message is not an object", code="invalid_feedback")
    if "stage" in document and "event" in document:
        return bounced(RoutedEvent.model_validate(document), table=table)
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        try:
            document = json.loads(document["Message"])
        except ValueError as err:
            raise InvalidInput("SNS message is not JSON", code="invalid_feedback") from err
        if not isinstance(document, dict):
            raise InvalidInput("SNS message is not an object", code="invalid_feedback")
    if "originationNumber" in document:
        return inbound_sms(document)
    if "detail-type" in document and isinstance(document.get("detail"), dict):
        document = document["detail"]  # the same record through an EventBridge destination
    return ses_event(document, table=table)
