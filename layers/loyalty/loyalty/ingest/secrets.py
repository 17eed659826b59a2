"""Per-channel webhook secrets: one Secrets Manager secret holding ``{"channel": ["s1", "s2"]}``.

Several secrets per channel are active at once (rotation: add the new one, move senders, remove
the old one). Values are cached for ``SECRETS_MAX_AGE_SECONDS`` by Powertools' parameters utility.
Locally the devstack creates the same secret in the emulator from ``config/local-secrets.json``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters

from loyalty.errors import TransientError, Unauthorized
from loyalty.settings import get_settings


def channel_secrets(channel: str) -> list[str]:
    """The active secrets of ``channel``; ``Unauthorized`` when it has none (nothing can verify)."""
    settings = get_settings()
    try:
        document: Any = parameters.get_secret(
            settings.webhook_secrets_id, transform="json", max_age=settings.secrets_max_age_s
        )
    except parameters.exceptions.GetParameterError as err:
        raise TransientError(f"cannot read webhook secrets: {err}") from err
    values = document.get(channel) if isinstance(document, dict) else None
    if isinstance(values, str):
        values = [values]
    if not values:
        raise Unauthorized(
            f"channel {channel!r} has no webhook secret configured", code="channel_not_configured"
        )
    return [str(v) for v in values]
