"""Customer API shapes (requests validated by Powertools; responses documented in OpenAPI)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

ConsentChannel = Literal["email", "sms", "push", "whatsapp"]


class ConsentView(BaseModel):
    model_config = ConfigDict(defer_build=True)
    granted: bool
    source: str
    at: str


class IdentifierView(BaseModel):
    model_config = ConfigDict(defer_build=True)
    type: str
    value: str
    channel: str = Field(description="the channel the identifier was first seen in")
    attached_at: str


class PointsView(BaseModel):
    model_config = ConfigDict(defer_build=True)
    available: int = 0
    pending: int = 0
    debt: int = 0
    lifetime_earned: int = 0
    tier: str | None = None


class TimelineEntry(BaseModel):
    """One interaction: a channel event (``entity=timeline``) or another capability's entry."""

    model_config = ConfigDict(defer_build=True)

    entity: str = Field(description="timeline (a channel event), notification_log (a message sent)...")
    event_id: str | None = None
    occurred_at: str
    channel: str | None = None
    type: str
    customer_id: str = Field(description="the id the entry was filed under (maybe an absorbed one)")
    summary: dict[str, str] = Field(default_factory=dict)


class ProfileFields(BaseModel):
    """The golden profile's fields, as every view shows them."""

    model_config = ConfigDict(defer_build=True)

    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    birthday: str | None = None
    postal_code: str | None = None
    preferred_channel: str | None = None


class ProfileView(ProfileFields):
    """The profile as staff see it: each field with where it came from."""

    field_sources: dict[str, dict[str, str | bool]] = Field(default_factory=dict)


class CustomerView(BaseModel):
    """The customer 360: profile, identifiers with channels, consents, points, last interactions."""

    model_config = ConfigDict(defer_build=True)

    customer_id: str
    requested_id: str = Field(description="the id asked for; differs when it was merged into this one")
    status: str
    created_at: str
    profile: ProfileView
    identifiers: list[IdentifierView]
    consents: dict[str, ConsentView]
    points: PointsView | None = None
    absorbed_ids: list[str] = Field(default_factory=list)
    merges: list[str] = Field(default_factory=list)
    last_interactions: list[TimelineEntry] = Field(default_factory=list)


class TimelinePage(BaseModel):
    model_config = ConfigDict(defer_build=True)
    customer_id: str
    entries: list[TimelineEntry]
    next_before: str | None = Field(default=None, description="pass as ?before= for the next page")


class CustomerPatch(BaseModel):
    """Staff edits: verified, stamped now, source ``staff``; consents per channel."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    first_name: str | None = Field(default=None, min_length=1, max_length=100)
    last_name: str | None = Field(default=None, min_length=1, max_length=100)
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    birthday: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    postal_code: str | None = Field(default=None, min_length=1, max_length=16)
    preferred_channel: ConsentChannel | None = None
    consents: dict[ConsentChannel, bool] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"not an IANA time zone: {value!r}") from err
        return value


class ReviewDecision(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    decision: Literal["approve", "reject"]
    note: str | None = Field(default=None, max_length=500)


class MergeReviewView(BaseModel):
    model_config = ConfigDict(defer_build=True)
    review_id: str
    status: str
    customer_ids: list[str]
    survivor_id: str
    problems: list[str]
    event_id: str
    channel: str
    identifier_types: list[str] = Field(default_factory=list)
    created_at: str
    decided_at: str | None = None
    decided_by: str | None = None
    merge_id: str | None = None


class ReviewPage(BaseModel):
    model_config = ConfigDict(defer_build=True)
    reviews: list[MergeReviewView]
    next_cursor: str | None = None


class UnmergeRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    merge_id: str | None = Field(default=None, description="defaults to the customer's latest merge")


class UnmergeResult(BaseModel):
    model_config = ConfigDict(defer_build=True)
    merge_id: str
    survivor_id: str
    restored_ids: list[str]


class ErasureResult(BaseModel):
    model_config = ConfigDict(defer_build=True)
    customer_id: str
    erased_ids: list[str]
    erased_at: str
    items_removed: int
    identifiers_freed: int
    events_anonymised: int
