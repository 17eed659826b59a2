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


def attributions(event_id: str) -> list[str]:
    """Every customer ``event_id`` was attributed to (issue 16, ``attr``): by its timeline entry's
    INSERT (``stage = attributed``) or, for events with profile facts and events attributed before
    that change, by the event item's ``customer_id``. A scan: for tests only."""
    from loyalty import aws
    from loyalty.settings import get_settings

    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=get_settings("table_name").table_name,
            FilterExpression="entity = :tl AND event_id = :e AND stage = :a",
            ExpressionAttributeValues={
                ":tl": {"S": "timeline"},
                ":e": {"S": event_id},
                ":a": {"S": "attributed"},
            },
        )
    )
    found = [item["customer_id"]["S"] for page in pages for item in page["Items"]]
    logged = EventLog().get(event_id).get("customer_id")
    return found + ([str(logged)] if logged else [])


def attributed_to(event_id: str) -> str:
    """The one customer ``event_id`` is attributed to (fails unless it was attributed exactly once)."""
    found = attributions(event_id)
    assert len(found) == 1, f"event {event_id} attributed {len(found)} times: {found}"
    return found[0]
