"""Runtime settings, read from the environment once per container through a cached getter."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from loyalty.errors import MissingSetting


class Settings(BaseModel):
    """What a function needs to know about its deployment; names match template.yaml's env vars."""

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(alias="TABLE_NAME")
    ingest_queue_url: str = Field(default="", alias="INGEST_QUEUE_URL")
    identity_queue_url: str = Field(default="", alias="IDENTITY_QUEUE_URL")
    points_queue_url: str = Field(default="", alias="POINTS_QUEUE_URL")
    stock_queue_url: str = Field(default="", alias="STOCK_QUEUE_URL")
    analytics_queue_url: str = Field(default="", alias="ANALYTICS_QUEUE_URL")
    webhook_secrets_id: str = Field(default="", alias="WEBHOOK_SECRETS_ID")
    signature_tolerance_s: int = Field(default=300, alias="SIGNATURE_TOLERANCE_SECONDS", ge=1)
    max_body_bytes: int = Field(default=256 * 1024, alias="MAX_BODY_BYTES", ge=1024)
    event_retention_days: int = Field(default=400, alias="EVENT_RETENTION_DAYS", ge=7)
    secrets_max_age_s: int = Field(default=300, alias="SECRETS_MAX_AGE_SECONDS", ge=0)
    # auth (loyalty.auth): the staff user pool's issuer, to tell staff tokens from customers'
    staff_issuer: str = Field(default="", alias="STAFF_ISSUER")
    # identity (loyalty.identity.policy): junk identifiers, per-type limits, merge fan-in cap
    identity_blocklist: str = Field(default="", alias="IDENTITY_BLOCKLIST")
    identifier_limits: str = Field(default="", alias="IDENTIFIER_LIMITS")
    merge_max_customers: int = Field(default=3, alias="MERGE_MAX_CUSTOMERS", ge=2, le=20)
    # stock (loyalty.stock): reservation hold and TTL grace, defaults, online locations, journal
    reservation_hold_hours: int = Field(default=48, alias="RESERVATION_HOLD_HOURS", ge=1, le=24 * 14)
    reservation_ttl_grace_hours: int = Field(default=24, alias="RESERVATION_TTL_GRACE_HOURS", ge=1)
    reservation_reminder_hours: int = Field(default=6, alias="RESERVATION_REMINDER_HOURS", ge=0)
    low_stock_threshold: int = Field(default=3, alias="LOW_STOCK_THRESHOLD", ge=0)
    online_locations: str = Field(default="WEB-FULFILMENT", alias="STOCK_ONLINE_LOCATIONS")
    stock_move_retention_days: int = Field(default=40, alias="STOCK_MOVE_RETENTION_DAYS", ge=1)
    # customer self-service (loyalty.selfservice): reservation caps
    reservation_cap_active: int = Field(default=5, alias="RESERVATION_CAP_ACTIVE", ge=1, le=100)
    reservation_cap_units_per_sku: int = Field(default=3, alias="RESERVATION_CAP_UNITS_PER_SKU", ge=1, le=100)
    # points (loyalty.points): return windows per channel (JSON), expiry, warnings, tier grace
    points_return_windows: str = Field(
        default='{"web": 30, "app": 30, "chat": 14, "pos": 14}', alias="POINTS_RETURN_WINDOWS"
    )
    points_return_window_days: int = Field(default=14, alias="POINTS_RETURN_WINDOW_DAYS", ge=0, le=365)
    points_expiry_days: int = Field(default=365, alias="POINTS_EXPIRY_DAYS", ge=30)
    points_expiry_warning_days: int = Field(default=30, alias="POINTS_EXPIRY_WARNING_DAYS", ge=1)
    tier_downgrade_grace_days: int = Field(default=30, alias="TIER_DOWNGRADE_GRACE_DAYS", ge=0)
    points_job_lookback_days: int = Field(default=7, alias="POINTS_JOB_LOOKBACK_DAYS", ge=1, le=400)
    # notifications (loyalty.notify): channel queues, delivery mode, budget, quiet hours, providers
    notify_email_queue_url: str = Field(default="", alias="NOTIFY_EMAIL_QUEUE_URL")
    notify_sms_queue_url: str = Field(default="", alias="NOTIFY_SMS_QUEUE_URL")
    notify_push_queue_url: str = Field(default="", alias="NOTIFY_PUSH_QUEUE_URL")
    notify_whatsapp_queue_url: str = Field(default="", alias="NOTIFY_WHATSAPP_QUEUE_URL")
    notify_channel: str = Field(default="", alias="NOTIFY_CHANNEL", description="a sender's channel")
    delivery_mode: str = Field(default="live", alias="DELIVERY_MODE", pattern="^(live|outbox)$")
    notify_weekly_cap: int = Field(default=10, alias="NOTIFY_WEEKLY_CAP", ge=1)
    notify_marketing_weekly_cap: int = Field(default=3, alias="NOTIFY_MARKETING_WEEKLY_CAP", ge=0)
    notify_marketing_channel_weekly_cap: int = Field(
        default=2, alias="NOTIFY_MARKETING_CHANNEL_WEEKLY_CAP", ge=0
    )
    quiet_hours_start: int = Field(default=21, alias="QUIET_HOURS_START", ge=0, le=23)
    quiet_hours_end: int = Field(default=9, alias="QUIET_HOURS_END", ge=0, le=23)
    notify_due_lookback_hours: int = Field(default=48, alias="NOTIFY_DUE_LOOKBACK_HOURS", ge=1, le=24 * 14)
    notify_fallback_after: int = Field(default=3, alias="NOTIFY_FALLBACK_AFTER_ATTEMPTS", ge=1, le=4)
    notify_send_lease_s: int = Field(default=60, alias="NOTIFY_SEND_LEASE_SECONDS", ge=10)
    notify_digest_minutes: int = Field(default=0, alias="NOTIFY_DIGEST_MINUTES", ge=0, le=24 * 60)
    notify_email_from: str = Field(default="", alias="NOTIFY_EMAIL_FROM")
    push_platform_arn: str = Field(default="", alias="PUSH_PLATFORM_APPLICATION_ARN")
    sms_origination_identity: str = Field(default="", alias="SMS_ORIGINATION_IDENTITY")
    whatsapp_secret_id: str = Field(default="", alias="WHATSAPP_SECRET_ID")
    whatsapp_api_base: str = Field(default="https://graph.facebook.com/v21.0", alias="WHATSAPP_API_BASE")
    # messages customers control (loyalty.notify.links / feedback / preferences)
    notify_link_secret_id: str = Field(default="", alias="NOTIFY_LINK_SECRET_ID")
    notify_link_base_url: str = Field(default="", alias="NOTIFY_LINK_BASE_URL")
    notify_feedback_queue_url: str = Field(default="", alias="NOTIFY_FEEDBACK_QUEUE_URL")
    notify_ses_configuration_set: str = Field(default="", alias="NOTIFY_SES_CONFIGURATION_SET")

    def require(self, *fields: str) -> Settings:
        """These settings, or ``MissingSetting`` naming every one of ``fields`` left empty."""
        missing = [Settings.model_fields[f].alias or f for f in fields if not getattr(self, f)]
        if missing:
            raise MissingSetting(f"required settings not set: {', '.join(sorted(missing))}")
        return self


@lru_cache(maxsize=16)
def get_settings(*required: str) -> Settings:
    """Settings of this process, ``required`` fields checked non-empty (a function names what it
    needs, so a missing value fails its first invocation instead of silently doing less); tests
    call ``get_settings.cache_clear()`` after changing env."""
    return Settings.model_validate(dict(os.environ)).require(*required)
