"""Builders for identity tests: canonical events with chosen identifiers, recorded in the event log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty.eventlog.store import EventLog
from loyalty.models.events import ChannelEvent, Consent, EngagementPayload, ProfilePayload
from loyalty.models.identifiers import Identifier, IdentifierType

BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def ident(kind: str, value: str) -> Identifier:
    return Identifier(type=IdentifierType(kind), value=value)


def event(
    *identifiers: tuple[str, str],
    channel: str = "web",
    minutes: int = 0,
    profile: dict[str, Any] | None = None,
    consents: list[tuple[str, bool]] | None = None,
    event_id: str | None = None,
    record: bool = True,
) -> ChannelEvent:
    """A canonical event (a profile update when ``profile``/``consents`` given, else a page view)."""
    payload: ProfilePayload | EngagementPayload
    if profile is not None or consents is not None:
        payload = ProfilePayload(
            **(profile or {}),
            consents=[Consent(channel=c, granted=g, source=channel) for c, g in consents or []],
        )
        etype = "customer.updated"
    else:
        payload = EngagementPayload(sku="SKU-1")
        etype = "product.viewed"
    ev = ChannelEvent(
        event_id=event_id or str(uuid.uuid4()),
        channel=channel,
        type=etype,
        occurred_at=BASE + timedelta(minutes=minutes),
        source_event_id=str(uuid.uuid4()),
        identifiers=[ident(k, v) for k, v in identifiers],
        payload=payload,
    )
    if record:
        EventLog().record(ev)
    return ev
