"""Webhook signatures: HMAC-SHA256 over ``timestamp + "." + raw body``, hex encoded.

Headers (case-insensitive):
- ``X-Loyalty-Timestamp``: Unix seconds when the sender signed the delivery.
- ``X-Loyalty-Signature``: ``v1=<hex>``; several comma-separated values are accepted so a sender
  can sign with an old and a new secret during rotation.

A delivery is accepted when ANY signature matches ANY active secret of its channel (compared in
constant time on bytes) and the timestamp is within the tolerance window, past or future.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from loyalty.errors import Unauthorized

TIMESTAMP_HEADER = "x-loyalty-timestamp"
SIGNATURE_HEADER = "x-loyalty-signature"
SCHEME = "v1"


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The ``v1=<hex>`` signature value for ``body`` sent at ``timestamp``."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={mac}"


def signed_headers(secret: str | bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers a sender adds to a delivery (used by tests, the demo and the docs)."""
    return {
        "Content-Type": "application/json",
        "X-Loyalty-Timestamp": str(timestamp),
        "X-Loyalty-Signature": sign(secret, timestamp, body),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str | bytes],
    *,
    now: float,
    tolerance_s: int,
) -> None:
    """Raise ``Unauthorized`` unless the delivery is signed by an active secret within the window."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ts = lower.get(TIMESTAMP_HEADER)
    raw_sig = lower.get(SIGNATURE_HEADER)
    if not raw_ts or not raw_sig:
        raise Unauthorized("missing signature headers", code="signature_missing")
    try:
        timestamp = int(raw_ts.strip())
    except ValueError:
        raise Unauthorized("timestamp is not Unix seconds", code="signature_malformed") from None
    if abs(now - timestamp) > tolerance_s:
        raise Unauthorized(f"timestamp outside the {tolerance_s}s tolerance window", code="signature_expired")
    offered = [
        part.strip().split("=", 1)[1].encode()
        for part in raw_sig.split(",")
        if part.strip().startswith(f"{SCHEME}=")
    ]
    if not offered:
        raise Unauthorized(f"no {SCHEME} signature", code="signature_malformed")
    matched = False
    for secret in secrets:
        expected = sign(secret, raw_ts.strip(), body).split("=", 1)[1].encode()
        for candidate in offered:
            # evaluate every pair: the time taken does not reveal which secret or position matched
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise Unauthorized("signature does not match", code="signature_invalid")
