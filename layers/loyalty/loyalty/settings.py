"""Runtime settings, read from the environment once per container through a cached getter.

Each function declares the settings it needs on its handler (``@requires("table_name", ...)``):
its first invocation, the cold start, fails with ``MissingSetting`` naming every one not set, and
``tests/unit/test_settings.py`` checks each declaration against the function's template
Environment. A ``Resource`` setting (a queue, a secret, an issuer) has no value a function could
run on: empty until set, it is declared by every function that uses it. An ``Blankable`` string
setting's empty value means something documented beside it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from loyalty.errors import MissingSetting

P = ParamSpec("P")
R = TypeVar("R")

#: a deployment resource (queue URL, secret id, issuer): set by the template, declared by its users
Resource = Annotated[str, Field(default="", json_schema_extra={"resource": True})]
#: the notification channels' queues (a sender hands a message on to another channel's queue)
CHANNEL_QUEUES = (
    "notify_email_queue_url",
    "notify_sms_queue_url",
    "notify_push_queue_url",
    "notify_whatsapp_queue_url",
)
#: a string whose empty value has a meaning (said beside the field)
Blankable = Annotated[str, Field(default="")]


class Settings(BaseModel):
    """What a function needs to know about its deployment; names match template.yaml's env vars."""

    model_config = ConfigDict(defer_build=True, frozen=True, alias_generator=str.upper)

    table_name: Resource
    ingest_queue_url: Resource
    identity_queue_url: Resource
    points_queue_url: Resource
    stock_queue_url: Resource
    analytics_queue_url: Resource
    webhook_secrets_id: Resource
    signature_tolerance_s: int = Field(default=300, alias="SIGNATURE_TOLERANCE_SECONDS", ge=1)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    event_retention_days: int = Field(default=400, ge=7)
    secrets_max_age_s: int = Field(default=300, alias="SECRETS_MAX_AGE_SECONDS", ge=0)
    # auth (loyalty.auth): the staff user pool's issuer, to tell staff tokens from customers'
    staff_issuer: Resource
    # identity (loyalty.identity.policy): junk identifiers, per-type limits, merge fan-in cap
    identity_blocklist: Blankable  # empty: no junk identifiers beyond the built-in ones
    identifier_limits: Blankable  # empty: the built-in per-type limits
    merge_max_customers: int = Field(default=3, ge=2, le=20)
    # stock (loyalty.stock): reservation hold and TTL grace, defaults, online locations, journal
    reservation_hold_hours: int = Field(default=48, ge=1, le=24 * 14)
    reservation_ttl_grace_hours: int = Field(default=24, ge=1)
    reservation_reminder_hours: int = Field(default=6, ge=0)
    low_stock_threshold: int = Field(default=3, ge=0)
    online_locations: str = Field(default="WEB-FULFILMENT", alias="STOCK_ONLINE_LOCATIONS")
    stock_move_retention_days: int = Field(default=40, ge=1)
    # customer self-service (loyalty.selfservice): reservation caps
    reservation_cap_active: int = Field(default=5, ge=1, le=100)
    reservation_cap_units_per_sku: int = Field(default=3, ge=1, le=100)
    # points (loyalty.points): return windows per channel (JSON), expiry, warnings, tier grace
    points_return_windows: str = '{"web": 30, "app": 30, "chat": 14, "pos": 14}'
    points_return_window_days: int = Field(default=14, ge=0, le=365)
    points_expiry_days: int = Field(default=365, ge=30)
    points_expiry_warning_days: int = Field(default=30, ge=1)
    tier_downgrade_grace_days: int = Field(default=30, ge=0)
    points_job_lookback_days: int = Field(default=7, ge=1, le=400)
    # notifications (loyalty.notify): channel queues, delivery mode, budget, quiet hours, providers
    notify_email_queue_url: Resource
    notify_sms_queue_url: Resource
    notify_push_queue_url: Resource
    notify_whatsapp_queue_url: Resource
    notify_channel: Resource  # a sender's channel (email, sms, push, whatsapp)
    delivery_mode: str = Field(default="live", pattern="^(live|outbox)$")
    notify_weekly_cap: int = Field(default=10, ge=1)
    notify_marketing_weekly_cap: int = Field(default=3, ge=0)
    notify_marketing_channel_weekly_cap: int = Field(default=2, ge=0)
    quiet_hours_start: int = Field(default=21, ge=0, le=23)
    quiet_hours_end: int = Field(default=9, ge=0, le=23)
    notify_due_lookback_hours: int = Field(default=48, ge=1, le=24 * 14)
    notify_fallback_after: int = Field(default=3, alias="NOTIFY_FALLBACK_AFTER_ATTEMPTS", ge=1, le=4)
    notify_send_lease_s: int = Field(default=60, alias="NOTIFY_SEND_LEASE_SECONDS", ge=10)
    notify_digest_minutes: int = Field(default=0, ge=0, le=24 * 60)
    notify_email_from: Resource
    push_platform_arn: Blankable = Field(alias="PUSH_PLATFORM_APPLICATION_ARN")  # empty: no push app
    sms_origination_identity: Blankable  # empty: the account's default origination
    whatsapp_secret_id: Resource
    whatsapp_api_base: str = "https://graph.facebook.com/v21.0"
    # messages customers control (loyalty.notify.links / feedback / preferences)
    notify_link_secret_id: Resource
    notify_link_base_url: Resource
    notify_feedback_queue_url: Resource
    notify_ses_configuration_set: Blankable  # empty: no SES event publishing

    def require(self, *fields: str) -> Settings:
        """These settings, or ``MissingSetting`` naming every one of ``fields`` left empty."""
        missing = [env_name(f) for f in fields if not getattr(self, f)]
        if missing:
            raise MissingSetting(f"required settings not set: {', '.join(sorted(missing))}")
        return self


@lru_cache(maxsize=16)
def get_settings(*required: str) -> Settings:
    """Settings of this process, ``required`` fields checked non-empty; tests call
    ``get_settings.cache_clear()`` after changing env."""
    return Settings.model_validate(dict(os.environ)).require(*required)


def env_name(field: str) -> str:
    """The environment variable (template.yaml's name) of a settings field."""
    return Settings.model_fields[field].alias or field.upper()


def requires(*fields: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare the settings a handler needs: its first invocation (the cold start) fails with
    ``MissingSetting`` naming each one not set (cached once set); ``handler.required_settings``
    lists them for the template check."""
    unknown = sorted(set(fields) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"no such settings: {', '.join(unknown)}")

    def declare(handler: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(handler)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            get_settings(*fields)
            return handler(*args, **kwargs)

        checked.__dict__["required_settings"] = tuple(env_name(f) for f in fields)
        return checked

    return declare
