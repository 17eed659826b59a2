"""Per-provider webhook secrets: one Secrets Manager secret (per stage) holding a JSON object.

Each entry is named after its provider (``POST /webhooks/{provider}``) and is either a list of
secrets (newest last; several are active at once for rotation) or an object::

    {
      "pos": ["whsec_..."],                                   # our own senders: Standard Webhooks
      "shopify": {"secrets": ["<app client secret>"], "locations": {"<location_id>": "<store id>"}},
      "woocommerce": ["<webhook secret>"],
      "whatsapp": {"secrets": ["<app secret>"], "verify_token": "<token typed in the Meta dashboard>"},
      "sendgrid": {"public_keys": ["<verification key, base64 DER>"]}
    }

``local_signing_key`` (a PEM EC P-256 private key) exists only in ``config/local-secrets.json``,
for the tests and tools that sign SendGrid-style deliveries; nothing here reads it. Values are
cached for ``SECRETS_MAX_AGE_SECONDS`` by Powertools' parameters utility.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loyalty.errors import TransientError, Unauthorized
from loyalty.settings import get_settings


class ProviderSecrets(BaseModel):
    """What one provider's connector needs to verify (and route) its deliveries."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    secrets: list[str] = Field(default_factory=list)
    verify_token: str | None = None
    public_keys: list[str] = Field(default_factory=list)
    locations: dict[str, str] = Field(default_factory=dict, description="Shopify location_id -> store")

    @property
    def configured(self) -> bool:
        return bool(self.secrets or self.public_keys or self.verify_token)


def provider_secrets(provider: str) -> ProviderSecrets:
    """The active secrets of ``provider``; ``Unauthorized`` when it has none (nothing can verify)."""
    settings = get_settings()
    try:
        document: Any = parameters.get_secret(
            settings.webhook_secrets_id, transform="json", max_age=settings.secrets_max_age_s
        )
    except parameters.exceptions.GetParameterError as err:
        raise TransientError(f"cannot read webhook secrets: {err}") from err
    entry = document.get(provider) if isinstance(document, dict) else None
    if isinstance(entry, str):
        entry = {"secrets": [entry]}
    elif isinstance(entry, list):
        entry = {"secrets": entry}
    try:
        found = ProviderSecrets.model_validate(entry) if isinstance(entry, dict) else None
    except ValidationError:
        found = None
    if found is None or not found.configured:
        raise Unauthorized(
            f"provider {provider!r} has no webhook secret configured", code="channel_not_configured"
        )
    return found
