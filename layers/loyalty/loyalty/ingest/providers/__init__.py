"""One connector per provider behind ``POST /webhooks/{provider}``.

A connector verifies the provider's OWN signature on the raw body and maps the provider's OWN
payload to canonical ``ChannelEvent``s. Providers: ``shopify``, ``woocommerce``, ``whatsapp`` and
``sendgrid``; our own senders (``pos``, ``app``, ``stock``, ``web``, ``chat``, ``email``) sign with
Standard Webhooks (``loyalty.ingest.providers.standard``). Modules are imported on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from loyalty.ingest.secrets import ProviderSecrets
from loyalty.models.events import ChannelEvent
from loyalty.models.identifiers import Identifier, IdentifierType, InvalidIdentifier


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery as received: headers (lower-cased names), raw body, verified secrets."""

    provider: str
    body: bytes
    received_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: ProviderSecrets = field(default_factory=ProviderSecrets)

    @classmethod
    def of(
        cls,
        provider: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: datetime,
        secrets: ProviderSecrets | None = None,
    ) -> Delivery:
        lower = {k.lower(): v for k, v in headers.items()}
        return cls(provider, body, received_at, lower, secrets or ProviderSecrets())

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or "").strip()


Verifier = Callable[[Delivery, float, int], None]
"""``verify(delivery, now, tolerance_s)``: raise ``Unauthorized`` unless the provider signed it."""
Normaliser = Callable[[Any, Delivery], list[ChannelEvent]]
"""``normalise(document, delivery)``: the canonical events of a verified, parsed delivery."""


@dataclass(frozen=True)
class Connector:
    verify: Verifier
    normalise: Normaliser
    ack_status: int = 202
    max_body_bytes: int | None = None  # None: the MAX_BODY_BYTES setting
    is_ping: Callable[[Delivery], bool] | None = None  # an unsigned activation ping (WooCommerce)


PROVIDERS = ("shopify", "woocommerce", "whatsapp", "sendgrid")
OWN_CHANNELS = ("web", "pos", "app", "chat", "email", "stock")


def connector(provider: str) -> Connector | None:
    """The connector of ``provider`` (None when unknown), imported on first use."""
    if provider in PROVIDERS:
        module = importlib.import_module(f"loyalty.ingest.providers.{provider}")
        found: Connector = module.CONNECTOR
        return found
    if provider in OWN_CHANNELS:
        from loyalty.ingest.providers.standard import connector_for

        return connector_for(provider)
    return None


def identifier_or_none(kind: IdentifierType, value: str | None) -> Identifier | None:
    """An identifier from a provider's free-form field, or None when it is absent or not one.

    A provider's customer record may hold a phone typed without a country code or a placeholder;
    the delivery is still the customer's (the other identifiers carry it), so the junk is dropped.
    """
    if not value or not value.strip():
        return None
    try:
        return Identifier(type=kind, value=value.strip())
    except (InvalidIdentifier, ValidationError, ValueError):
        return None


def identifiers_of(*pairs: tuple[IdentifierType, str | None]) -> list[Identifier]:
    """Distinct valid identifiers among ``pairs``, in order."""
    found: list[Identifier] = []
    for kind, value in pairs:
        ident = identifier_or_none(kind, value)
        if ident is not None and ident not in found:
            found.append(ident)
    return found


def body_hmac_matches(offered: bytes, secrets: list[str], body: bytes) -> bool:
    """Whether ``offered`` is the HMAC-SHA256 of ``body`` under any secret (constant time)."""
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, offered)
    return matched
