"""What a customer says about their messages, recorded as ``consent.changed`` events.

Every change (one-click unsubscribe, the preference center, an SMS STOP, a complaint) becomes a
canonical event in the event log, never a direct profile write: identity applies it like any
other consent (latest statement wins, an opt-out survives merges) and the event log keeps the
proof of who opted out, when and how. The event is about the address the customer was reached
at (its identifier), so identity attributes it to whoever owns that address now.

Quiet hours and frequency are not consents: they are one statement item per customer
(``CUST#<id>`` / ``NOTIF#PREFS``, ``PreferencesItem``) that the latest statement replaces and that
the fan-out reads for the survivor and every id it absorbed (latest wins), so it follows merges
like a consent; the time zone they are read in is the profile's, stated through the event log.

Event ids are derived from what was said (the link's token, the provider's message id), so a
repeated POST or a redelivered provider notification records nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loyalty.errors import InvalidInput, NotFound
from loyalty.eventlog.store import EventLog
from loyalty.models.events import Channel, ChannelEvent, Consent, EventType, ProfilePayload, event_id_for
from loyalty.models.identifiers import Identifier, IdentifierType
from loyalty.notify import links
from loyalty.notify.catalogue import TOPICS
from loyalty.notify.policy import CHANNELS, CONTACT_TYPE, Preferences, Recipient, topic_key
from loyalty.notify.store import NotifyStore, PreferencesItem
from loyalty.notify.templates import LANGUAGES
from loyalty.observability import logger

#: identifier types a consent event may name the customer by, in order of preference
_ID_TYPES = ("email", "phone", "loyalty_card", "device_id")


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["21:30"])]
#: highest marketing cap a customer may state (the stage's own cap still applies when lower)
MAX_MARKETING_WEEKLY = 50


class QuietHours(BaseModel):
    """A local window (``start`` inclusive, ``end`` exclusive; may cross midnight) with no messages."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    start: HHMM
    end: HHMM


def _zone_name(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError("timezone must be an IANA zone such as Europe/Madrid") from err
    return value


class DeliveryChange(BaseModel):
    """When and how often a customer wants messages: each field omitted is left as it is."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    quiet_hours: QuietHours | None = Field(default=None, description="null: the stage's quiet hours")
    frequency: Literal["as_it_happens", "daily_digest", "weekly"] | None = None
    marketing_weekly_max: int | None = Field(default=None, ge=0, le=MAX_MARKETING_WEEKLY)
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone of the quiet hours")

    _zone = field_validator("timezone")(_zone_name)

    @classmethod
    def from_form(cls, form: dict[str, str]) -> DeliveryChange:
        """The preference center's form: empty quiet hours are the stage's, an empty cap none."""
        start, end = form.get("quiet_start", ""), form.get("quiet_end", "")
        cap = form.get("marketing_weekly_max", "").strip()
        return cls.model_validate(
            {
                "quiet_hours": {"start": start, "end": end} if start or end else None,
                "frequency": form.get("frequency") or None,
                "marketing_weekly_max": cap or None,
            }
            | ({"timezone": form["timezone"].strip()} if form.get("timezone", "").strip() else {})
        )

    def changes(self, current: Preferences) -> Preferences | None:
        """The statement this change makes against ``current`` (None: it changes nothing stored)."""
        fields = self.model_fields_set
        wanted = Preferences(
            quiet_start=(self.quiet_hours.start if self.quiet_hours else None)
            if "quiet_hours" in fields
            else current.quiet_start,
            quiet_end=(self.quiet_hours.end if self.quiet_hours else None)
            if "quiet_hours" in fields
            else current.quiet_end,
            frequency=self.frequency or current.frequency,
            marketing_weekly_max=self.marketing_weekly_max
            if "marketing_weekly_max" in fields
            else current.marketing_weekly_max,
        )
        return None if wanted == current else wanted


@dataclass(frozen=True)
class Statement:
    """One consent statement: a whole channel (topic None) or one topic on it."""

    channel: str
    granted: bool
    topic: str | None = None


@dataclass(frozen=True)
class Recorded:
    customer_id: str
    event_id: str | None  # None: only quiet hours / frequency changed (no consent event)
    new: bool  # False: the same statement had been recorded already (a repeat)
    statements: tuple[Statement, ...] = field(default_factory=tuple)
    delivery: Preferences | None = None  # the quiet hours / frequency now stated


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
    timezone: str | None = None,
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
        payload=ProfilePayload(consents=consents, locale=locale, timezone=timezone),
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
    prefs = recipient.prefs
    quiet = {"start": prefs.quiet_start, "end": prefs.quiet_end} if prefs.quiet_start else None
    return {
        "customer_id": recipient.customer_id,
        "language": (recipient.locale or "es")[:2],
        "timezone": recipient.timezone,
        "quiet_hours": quiet,
        "frequency": prefs.frequency,
        "marketing_weekly_max": prefs.marketing_weekly_max,
        "channels": {c: recipient.consented(c) for c in CHANNELS if recipient.address(c)},
        "topics": {
            c: {t: recipient.subscribed(c, t) for t in TOPICS} for c in CHANNELS if recipient.address(c)
        },
    }


def delivery_of(customer_ids: tuple[str, ...], store: NotifyStore | None = None) -> Preferences:
    """The quiet hours / frequency in force for a customer (live id first, then the absorbed ones)."""
    store = store or NotifyStore()
    live, *absorbed = customer_ids
    return store.latest_preferences(store.own_preferences(live), absorbed)


def save_delivery(
    customer_id: str, change: DeliveryChange, source: str, *, now: datetime | None = None
) -> Preferences | None:
    """Store the quiet hours / frequency ``change`` states (None: it states what is stored already)."""
    store = NotifyStore()
    recipient = _live(customer_id, store)
    wanted = change.changes(recipient.prefs)
    if wanted is None:
        return None
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    saved = store.save_preferences(PreferencesItem(recipient.customer_id, wanted, at, source))
    logger.info(
        "delivery preferences stated",
        extra={"customer_id": recipient.customer_id, "frequency": wanted.frequency, "saved": saved},
    )
    return wanted


def _statements(
    current: dict[str, Any], channels: dict[str, bool], topics: dict[str, dict[str, bool]]
) -> list[Statement]:
    """The consent statements that differ from ``current`` (400 for a channel or topic not offered)."""
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
    return statements


def change_preferences(
    customer_id: str,
    *,
    channels: dict[str, bool],
    topics: dict[str, dict[str, bool]],
    language: str | None = None,
    delivery: DeliveryChange | None = None,
    source: str = "preferences",
    store: NotifyStore | None = None,
    now: datetime | None = None,
) -> Recorded | None:
    """Record what changed against the current preferences (None: nothing changed).

    Consents, language and time zone become one ``consent.changed`` event; quiet hours and
    frequency one preferences statement (``save_delivery``).
    """
    store = store or NotifyStore()
    now = now or datetime.now(UTC)
    current = preferences(customer_id, store=store)
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", code="invalid_language")
    statements = _statements(current, channels, topics)
    new_language = language if language and language != current["language"] else None
    zone = delivery.timezone if delivery and delivery.timezone != current["timezone"] else None
    stated = save_delivery(customer_id, delivery, source, now=now) if delivery else None
    if not statements and new_language is None and zone is None:
        return None if stated is None else Recorded(current["customer_id"], None, True, delivery=stated)
    recipient = _live(customer_id, store)
    key = "|".join(f"{s.channel}:{s.topic}:{s.granted}" for s in statements)
    event_id, new = record(
        _identifier(recipient, None),
        statements,
        source=source,
        dedupe_key=f"preferences:{recipient.customer_id}:{now.isoformat()}:{key}:{new_language}:{zone}",
        channel=Channel.WEB,
        locale=new_language,
        timezone=zone,
        now=now,
    )
    return Recorded(recipient.customer_id, event_id, new, tuple(statements), stated)


__all__ = [
    "DeliveryChange",
    "QuietHours",
    "Recorded",
    "Statement",
    "change_preferences",
    "delivery_of",
    "preferences",
    "record",
    "save_delivery",
    "topic_key",
    "unsubscribe",
]
