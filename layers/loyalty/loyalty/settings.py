"""Runtime settings, read from the environment once per container through a cached getter."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


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
    # identity (loyalty.identity.policy): junk identifiers, per-type limits, merge fan-in cap
    identity_blocklist: str = Field(default="", alias="IDENTITY_BLOCKLIST")
    identifier_limits: str = Field(default="", alias="IDENTIFIER_LIMITS")
    merge_max_customers: int = Field(default=3, alias="MERGE_MAX_CUSTOMERS", ge=2, le=20)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings.model_validate(dict(os.environ))
