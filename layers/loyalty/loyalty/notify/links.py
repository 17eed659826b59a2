"""Signed links in messages: one-click unsubscribe (RFC 8058) and the preference center.

A token is ``<payload>.<mac>``: the payload (base64url JSON) names the customer, the channel, the
topics and the purpose; the mac is HMAC-SHA256 over the payload with the per-stage link secret
(Secrets Manager, ``NOTIFY_LINK_SECRET_ID``, key ``unsubscribe``; several values verify at once
for rotation, the first one signs). No sign-in is needed: holding the link is the permission, as
RFC 8058 intends. A token never expires (a years-old email must still unsubscribe) and carries no
address, so it says nothing about the customer to whoever reads it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from loyalty.errors import NotFound, TransientError
from loyalty.notify.secrets import json_secret
from loyalty.settings import get_settings

Purpose = Literal["unsubscribe", "preferences"]
SECRET_KEY = "unsubscribe"  # noqa: S105 - the key inside the secret, not a secret
_PURPOSE_CODE = {"unsubscribe": "u", "preferences": "p"}
_CODE_PURPOSE: dict[str, Purpose] = {"u": "unsubscribe", "p": "preferences"}
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{8,512}\.[A-Za-z0-9_-]{43}$"  # noqa: S105 - a pattern


@dataclass(frozen=True)
class LinkClaims:
    customer_id: str
    purpose: Purpose
    channel: str | None = None
    topics: tuple[str, ...] = ()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_secrets() -> list[str]:
    """The active link secrets (the first one signs); a missing secret fails loudly."""
    secret_id = get_settings().notify_link_secret_id
    if not secret_id:
        raise TransientError("NOTIFY_LINK_SECRET_ID is not configured")
    values = json_secret(secret_id, TransientError, "the link secret").get(SECRET_KEY)
    if isinstance(values, str):
        values = [values]
    if not values:
        raise TransientError(f"the link secret has no {SECRET_KEY!r} key")
    return [str(v) for v in values]


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign(claims: LinkClaims, secret: str | None = None) -> str:
    body: dict[str, Any] = {"c": claims.customer_id, "p": _PURPOSE_CODE[claims.purpose]}
    if claims.channel:
        body["ch"] = claims.channel
    if claims.topics:
        body["t"] = sorted(claims.topics)
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(secret or link_secrets()[0], payload)}"


def verify(token: str, purpose: Purpose, secrets: list[str] | None = None) -> LinkClaims:
    """The claims of a genuine token for ``purpose``; ``NotFound`` for anything else (no oracle)."""
    invalid = NotFound("this link is not valid", code="invalid_link")
    payload, _, mac = token.partition(".")
    if not payload or not mac:
        raise invalid
    if not any(hmac.compare_digest(_mac(s, payload), mac) for s in secrets or link_secrets()):
        raise invalid
    try:
        body = json.loads(_unb64(payload))
    except ValueError:
        raise invalid from None
    if not isinstance(body, dict) or _CODE_PURPOSE.get(str(body.get("p"))) != purpose:
        raise invalid
    return LinkClaims(
        customer_id=str(body.get("c", "")),
        purpose=purpose,
        channel=str(body["ch"]) if body.get("ch") else None,
        topics=tuple(str(t) for t in body.get("t") or ()),
    )


def url(path: str, token: str) -> str:
    return f"{get_settings().notify_link_base_url.rstrip('/')}/{path}/{token}"


def unsubscribe_url(customer_id: str, channel: str, topics: tuple[str, ...] = ()) -> str:
    claims = LinkClaims(customer_id, "unsubscribe", channel, topics)
    return url("unsubscribe", sign(claims))


def preferences_url(customer_id: str) -> str:
    return url("preferences", sign(LinkClaims(customer_id, "preferences")))
