"""Mobile app events: sign-up, login with a device id, product viewed, wishlist added."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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


class Device(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str = Field(min_length=1)
    platform: Literal["ios", "android", "web"]


class AppUser(BaseModel):
    model_config = ConfigDict(defer_build=True)
    email: str | None = None
    phone: str | None = None
    loyalty_card: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    push_opt_in: bool | None = None


class Properties(BaseModel):
    model_config = ConfigDict(defer_build=True)
    sku: str | None = None
    screen: str | None = None
    store_id: str | None = None


class AppEvent(BaseModel):
    model_config = ConfigDict(defer_build=True)
    event_id: str = Field(min_length=1)
    event: Literal["sign_up", "login", "product_view", "wishlist_add"]
    timestamp: AwareDatetime
    device: Device
    user: AppUser = Field(default_factory=AppUser)
    properties: Properties = Field(default_factory=Properties)


_TYPES = {
    "sign_up": EventType.CUSTOMER_REGISTERED,
    "login": EventType.SESSION_STARTED,
    "product_view": EventType.PRODUCT_VIEWED,
    "wishlist_add": EventType.WISHLIST_ADDED,
}


def normalise(document: Any, received_at: datetime) -> list[ChannelEvent]:
    event = AppEvent.model_validate(document)
    identifiers = [Identifier(type=IdentifierType.DEVICE_ID, value=event.device.id)]
    user = event.user
    for kind, value in (
        (IdentifierType.EMAIL, user.email),
        (IdentifierType.PHONE, user.phone),
        (IdentifierType.LOYALTY_CARD, user.loyalty_card),
    ):
        if value:
            identifiers.append(Identifier(type=kind, value=value))
    payload: ProfilePayload | EngagementPayload
    if event.event == "sign_up":
        consents = []
        if user.push_opt_in is not None:
            consents.append(Consent(channel="push", granted=user.push_opt_in, source="app"))
        payload = ProfilePayload(
            first_name=user.first_name,
            last_name=user.last_name,
            locale=user.locale,
            timezone=user.timezone,
            consents=consents,
        )
    else:
        payload = EngagementPayload(
            sku=event.properties.sku, store_id=event.properties.store_id, platform=event.device.platform
        )
    return [
        ChannelEvent(
            event_id=event_id_for(Channel.APP, event.event_id),
            channel=Channel.APP,
            type=_TYPES[event.event],
            occurred_at=event.timestamp,
            received_at=received_at,
            source_event_id=event.event_id,
            identifiers=identifiers,
            payload=payload,
        )
    ]
