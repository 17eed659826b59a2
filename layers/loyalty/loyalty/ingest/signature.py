"""Standard Webhooks (https://www.standardwebhooks.com) for our own senders: tills, app, ERP, ...

Headers (case-insensitive):
- ``webhook-id``: the delivery's unique id (the same on every retry).
- ``webhook-timestamp``: Unix seconds when the sender signed it.
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``; several values
  separated by spaces, so a sender can sign with an old and a new secret during rotation.

Secrets are ``whsec_<base64 key>``. A delivery is accepted when ANY ``v1`` signature matches ANY
active secret (constant-time compare on bytes) and the timestamp is within the tolerance window,
past or future. The HMAC is the one the ``standardwebhooks`` package computes; this module owns
the header parsing and the clock so that a malformed header is a 401, never a crash, and tests can
pin ``now``. ``tests/unit/test_ingest_standard_webhooks.py`` checks it against the spec's vectors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping

from loyalty.errors import Unauthorized

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret


def secret_key(secret: str | bytes) -> bytes:
    """The raw HMAC key of a ``whsec_...`` secret (base64, padding optional) or of raw bytes."""
    if isinstance(secret, bytes):
        return secret
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from None


def sign(secret: str | bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``body`` sent as ``msg_id`` at ``timestamp``."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
    return f"{SCHEME},{base64.b64encode(mac).decode()}"


def signed_headers(
    secret: str | bytes, timestamp: int, body: bytes, msg_id: str | None = None
) -> dict[str, str]:
    """Headers a sender adds to a delivery (used by tests, the demo, the tools and the docs).

    Without ``msg_id`` the id is derived from the body and timestamp, so signing the same bytes
    twice at the same second yields the same delivery (as a sender's retry would).
    """
    if msg_id is None:
        digest = hashlib.sha256(f"{timestamp}.".encode() + body).digest()[:16]
        msg_id = f"msg_{uuid.UUID(bytes=digest).hex}"
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def _offered(raw: str) -> list[bytes]:
    offered = []
    for part in raw.split():
        version, _, value = part.partition(",")
        if version != SCHEME or not value:
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            continue
    return offered


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str | bytes],
    *,
    now: float,
    tolerance_s: int,
) -> str:
    """Return the delivery's ``webhook-id``; ``Unauthorized`` unless signed by an active secret."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = (lower.get(ID_HEADER) or "").strip()
    raw_ts = (lower.get(TIMESTAMP_HEADER) or "").strip()
    raw_sig = lower.get(SIGNATURE_HEADER) or ""
    if not msg_id or not raw_ts or not raw_sig.strip():
        raise Unauthorized("missing signature headers", code="signature_missing")
    if not raw_ts.isdigit() or len(raw_ts) > 12:
        raise Unauthorized("webhook-timestamp is not Unix seconds", code="signature_malformed")
    if abs(now - int(raw_ts)) > tolerance_s:
        raise Unauthorized(f"timestamp outside the {tolerance_s}s tolerance window", code="signature_expired")
    offered = _offered(raw_sig)
    if not offered:
        raise Unauthorized(f"no {SCHEME} signature", code="signature_malformed")
    matched = False
    for secret in secrets:
        try:
            expected = base64.b64decode(sign(secret, msg_id, raw_ts, body).split(",", 1)[1])
        except ValueError:
            continue  # a misconfigured secret verifies nothing; the others still can
        for candidate in offered:
            # evaluate every pair: the time taken does not reveal which secret or position matched
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise Unauthorized("signature does not match", code="signature_invalid")
    return msg_id
