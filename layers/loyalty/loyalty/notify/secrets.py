"""The JSON secrets of the notify functions (link signing keys, the WhatsApp token): one reader."""

from __future__ import annotations

from typing import Any


def json_secret(secret_id: str, unreadable: type[Exception], what: str) -> dict[str, Any]:
    """The JSON object stored in ``secret_id`` (cached ``SECRETS_MAX_AGE_S``); ``{}`` when it is not
    an object. ``unreadable(message)`` is raised when Secrets Manager cannot be read."""
    from aws_lambda_powertools.utilities import parameters  # only the functions that sign or send

    from loyalty.settings import get_settings

    max_age = get_settings().secrets_max_age_s
    try:
        found: Any = parameters.get_secret(secret_id, transform="json", max_age=max_age)
    except parameters.exceptions.GetParameterError as err:
        raise unreadable(f"cannot read {what}: {err}") from err
    return found if isinstance(found, dict) else {}
