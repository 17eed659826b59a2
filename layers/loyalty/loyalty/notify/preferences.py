"""What a customer says about their messages, recorded as ``consent.changed`` events.

Every change (one-click unsubscribe, the preference center, an SMS STOP, a complaint) becomes a
canonical event in the event log, never a direct profile write: identity applies it like any
other consent (latest statement wins, an opt-out survives merges) and the event log keeps the
proof of who opted out, when and how. The event is about the address the customer was reached
at (its identifier), so identity attributes it to whoever owns that address now.

Event ids are derived from what was said (the link's token, the provider's message id), so a
repeated POST or a redelivered provider notification records nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loyalty.errors import InvalidInput, NotFound
from loyalty.eventlog.store import EventLog
from loyalty.models.events import Channel, ChannelEvent, Consent, EventType, ProfilePayload, event_id_for
from loyalty.models.identifiers import Identifier, IdentifierType
from loyalty.notify import links
from loyalty.notify.catalogue import TOPICS
from loyalty.notify.policy import CHANNELS, CONTACT_TYPE, Recipient, topic_key
from loyalty.notify.store import NotifyStore
from loyalty.notify.templates import LANGUAGES
from loyalty.observability import logger

#: identifier types a consent event may name the customer by, in order of preference
_ID_TYPES = ("email", "phone", "loyalty_card", "device_id")


@dataclass(frozen=True)
class Statement:
    """One consent statement: a whole channel (topic None) or one topic on it."""

    channel: str
    granted: bool
    topic: str | None = None


@dataclass(frozen=True)
class Recorded:
    customer_id: str
    event_id: str
    new: bool  # False: the same statement had been recorded already (a repeat)
    statements: tuple[Statement, ...] = field(default_factory=tuple)


def _identifier(recipient: Recipient, channel: str | None) -> Identifier:
    preferred = [CONTACT_TYPE[channel]] if channel in CONTACT_TYPE else []
    for kind in [*preferred, *_ID_TYPES]:
        value = recipient.contacts.get(kind)
        if value:
            return Identifier(type=IdentifierType(kind), value=value)
    raise NotFound("this customer has no contact point any more", code="customer_not_found")


def record(
    identifier: Identifier,
    statements: Iterable[Statement],
    *,
    source: str,
    dedupe_key: str,
    channel: Channel = Channel.EMAIL,
    locale: str | None = None,
    now: datetime | None = None,
    log: EventLog | None = None,
) -> tuple[str, bool]:
    """Record one ``consent.changed`` event about ``identifier``; (event id, newly recorded)."""
    now = now or datetime.now(UTC)
    consents = [
        Consent.model_validate(
            {"channel": s.channel, "granted": s.granted, "source": source, "topic": s.topic}
        )
        for s in statements
    ]
    event_id = event_id_for(channel, dedupe_key, "consent")
    event = ChannelEvent(
        event_id=event_id,
        channel=channel,
        type=EventType.CONSENT_CHANGED,
        occurred_at=now,
        source_event_id=dedupe_key[:256],
        identifiers=[identifier],
        payload=ProfilePayload(consents=consents, locale=locale),
    )
    new = (log or EventLog()).record(event)
    logger.info(
        "consent statement recorded",
        extra={"event_id": event_id, "source": source, "new": new, "consents": len(consents)},
    )
    return event_id, new


def _live(customer_id: str, store: NotifyStore) -> Recipient:
    recipient, _ = store.recipient(customer_id, "-")
    if recipient is None or recipient.status in {"erasing", "erased"}:
        raise NotFound("this link is not valid", code="invalid_link")
    return recipient


def unsubscribe(token: str, *, store: NotifyStore | None = None, now: datetime | None = None) -> Recorded:
    """One-click unsubscribe: the link's channel (or only its topics on it) is refused."""
    claims = links.verify(token, "unsubscribe")
    if claims.channel not in CHANNELS:
        raise NotFound("this link is not valid", code="invalid_link")
    recipient = _live(claims.customer_id, store or NotifyStore())
    statements = tuple(Statement(claims.channel, False, t) for t in claims.topics) or (
        Statement(claims.channel, False),
    )
    digest = hashlib.sha256(token.encode()).hexdigest()
    event_id, new = record(
        _identifier(recipient, claims.channel),
        statements,
        source="link:unsubscribe",
        dedupe_key=f"unsubscribe:{digest}",
        now=now,
    )
    return Recorded(recipient.customer_id, event_id, new, statements)


def preferences(customer_id: str, *, store: NotifyStore | None = None) -> dict[str, Any]:
    """What the preference center shows: channels and topics (on unless refused), language."""
    recipient = _live(customer_id, store or NotifyStore())
    return {
        "customer_id": recipient.customer_id,
        "language": (recipient.locale or "es")[:2],
        "channels": {c: recipient.consented(c) for c in CHANNELS if recipient.address(c)},
        "topics": {
            c: {t: recipient.subscribed(c, t) for t in TOPICS} for c in CHANNELS if recipient.address(c)
        },
    }


def change_preferences(
    customer_id: str,
    *,
    channels: dict[str, bool],
    topics: dict[str, dict[str, bool]],
    language: str | None = None,
    source: str = "preferences",
    store: NotifyStore | None = None,
    now: datetime | None = None,
) -> Recorded | None:
    """Record what changed against the current preferences (None: nothing changed).

    The service ``/me`` calls for a signed-in customer; the signed link calls it too.
    """
    store = store or NotifyStore()
    now = now or datetime.now(UTC)
    current = preferences(customer_id, store=store)
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", code="invalid_language")
    statements: list[Statement] = []
    for channel, on in channels.items():
        if channel not in current["channels"]:
            raise InvalidInput(f"no {channel} contact to set", code="invalid_channel", field=channel)
        if current["channels"][channel] != on:
            statements.append(Statement(channel, on))
    for channel, wanted in topics.items():
        for topic, on in wanted.items():
            if channel not in current["topics"] or topic not in TOPICS:
                raise InvalidInput(f"unknown topic {channel}:{topic}", code="invalid_topic", field=topic)
            if current["topics"][channel][topic] != on:
                statements.append(Statement(channel, on, topic))
    new_language = language if language and language != current["language"] else None
    if not statements and new_language is None:
        return None
    recipient = _live(customer_id, store)
    key = "|".join(f"{s.channel}:{s.topic}:{s.granted}" for s in statements)
    event_id, new = record(
        _identifier(recipient, None),
        statements,
        source=source,
        dedupe_key=f"preferences:{recipient.customer_id}:{now.isoformat()}:{key}:{new_language}",
        channel=Channel.WEB,
        locale=new_language,
        now=now,
    )
    return Recorded(recipient.customer_id, event_id, new, tuple(statements))


__all__ = ["Recorded", "Statement", "change_preferences", "preferences", "record", "topic_key", "unsubscribe"]
