"""Shapes of the ``/me`` API: what a customer may send and what they see of themselves."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty.identity.views import ConsentChannel, CustomerView, PointsView, ProfileFields
from loyalty.notify.policy import Preferences
from loyalty.notify.preferences import DeliveryChange, QuietHours
from loyalty.stock.service import ID_PATTERN

SelfServiceChannel = Literal["web", "app"]


class PreferencesPatch(DeliveryChange):
    """Consents per channel, language, and when / how often messages come (a verified statement)."""

    model_config = ConfigDict(extra="forbid")

    consents: dict[ConsentChannel, bool] = Field(default_factory=dict)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    channel: SelfServiceChannel = Field(default="web", description="where the customer made the change")


class MeRedemptionRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    points: int = Field(ge=1, le=1_000_000)
    channel: SelfServiceChannel | None = None
    note: str | None = Field(default=None, max_length=256)


class MeReservationRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    sku: str = Field(pattern=ID_PATTERN)
    quantity: int = Field(ge=1, le=100)
    location_id: str = Field(pattern=ID_PATTERN)


class MeProfile(ProfileFields):
    """The customer's own profile (without the provenance staff see)."""


class MeConsent(BaseModel):
    model_config = ConfigDict(defer_build=True)
    granted: bool
    at: str


class MeIdentifier(BaseModel):
    model_config = ConfigDict(defer_build=True)
    type: str
    value: str


class MeMessages(BaseModel):
    """When and how often the customer gets messages (the time zone is the profile's)."""

    model_config = ConfigDict(defer_build=True)

    quiet_hours: QuietHours | None = None
    frequency: str = "as_it_happens"
    marketing_weekly_max: int | None = None

    @classmethod
    def of(cls, prefs: Preferences) -> MeMessages:
        quiet = QuietHours(start=prefs.quiet_start, end=prefs.quiet_end) if prefs.quiet_start else None
        return cls(
            quiet_hours=quiet, frequency=prefs.frequency, marketing_weekly_max=prefs.marketing_weekly_max
        )


class MeView(BaseModel):
    """A customer's own profile: no provenance, no merge history, nobody else's data."""

    model_config = ConfigDict(defer_build=True)

    customer_id: str
    created_at: str
    profile: MeProfile
    identifiers: list[MeIdentifier]
    consents: dict[str, MeConsent]
    points: PointsView | None = None
    messages: MeMessages = MeMessages()

    @classmethod
    def of(cls, view: CustomerView, prefs: Preferences | None = None) -> MeView:
        return cls(
            customer_id=view.customer_id,
            created_at=view.created_at,
            profile=MeProfile.model_validate(view.profile.model_dump(exclude={"field_sources"})),
            identifiers=[MeIdentifier(type=i.type, value=i.value) for i in view.identifiers],
            consents={ch: MeConsent(granted=c.granted, at=c.at) for ch, c in view.consents.items()},
            points=view.points,
            messages=MeMessages.of(prefs or Preferences()),
        )
