"""Email service provider events (SendGrid-like): a JSON ARRAY of events per delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from loyalty.models.events import (
    Channel,
    ChannelEvent,
    Consent,
    EngagementPayload,
    EventType,
    ProfilePayload,
    event_id_for,
)
from loyalty.models.identifiers import Identifier, IdentifierType


class EspEvent(BaseModel):
    model_config = ConfigDict(defer_build=True)
    sg_event_id: str = Field(min_length=1)
    event: Literal["subscribe", "open", "click", "unsubscribe"]
    email: str
    timestamp: int = Field(gt=0, description="Unix seconds")
    campaign_id: str | None = None
    list_id: str | None = None
    url: str | None = None
    first_name: str | None = None
    locale: str | None = None


_BATCH = TypeAdapter(list[EspEvent])


def normalise(document: Any, received_at: datetime) -> list[ChannelEvent]:
    if not isinstance(document, list) or not 1 <= len(document) <= 100:
        raise ValueError("an email delivery is a JSON array of 1 to 100 events")
    events = []
    for esp in _BATCH.validate_python(document):
        payload: ProfilePayload | EngagementPayload
        if esp.event in ("subscribe", "unsubscribe"):
            event_type = EventType.CONSENT_CHANGED
            payload = ProfilePayload(
                first_name=esp.first_name,
                locale=esp.locale,
                consents=[Consent(channel="email", granted=esp.event == "subscribe", source="email")],
            )
        else:
            event_type = EventType.EMAIL_OPENED if esp.event == "open" else EventType.EMAIL_CLICKED
            payload = EngagementPayload(campaign_id=esp.campaign_id, url=esp.url)
        events.append(
            ChannelEvent(
                event_id=event_id_for(Channel.EMAIL, esp.sg_event_id),
                channel=Channel.EMAIL,
                type=event_type,
                occurred_at=datetime.fromtimestamp(esp.timestamp, UTC),
                received_at=received_at,
                source_event_id=esp.sg_event_id,
                identifiers=[Identifier(type=IdentifierType.EMAIL, value=esp.email)],
                payload=payload,
            )
        )
    return events
