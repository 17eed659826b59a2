"""Accept one webhook delivery: check, verify, normalise, queue. Nothing is half-applied."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from loyalty import queue
from loyalty.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from loyalty.ingest import signature
from loyalty.ingest.channels import normaliser
from loyalty.ingest.secrets import channel_secrets
from loyalty.models.events import ChannelEvent
from loyalty.models.identifiers import InvalidIdentifier
from loyalty.settings import get_settings


def _field_of(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    parts = [str(part) for part in first["loc"] if part != "delivery"]
    if first["type"] == "union_tag_invalid":  # the discriminator itself is the field at fault
        parts.append(str(first.get("ctx", {}).get("discriminator", "")).strip("'"))
    loc = ".".join(p for p in parts if p)
    return loc or "body", first["msg"]


def _check_envelope(headers: Mapping[str, str], body: bytes, max_bytes: int) -> None:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"content type must be application/json, got {media or 'none'!r}")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {max_bytes}")


def normalise_delivery(channel: str, body: bytes, received_at: datetime) -> list[ChannelEvent]:
    """Parse and normalise a verified body into canonical events (400/422 on bad input)."""
    normalise = normaliser(channel)
    if normalise is None:
        raise NotFound(f"unknown channel {channel!r}", code="unknown_channel", field="channel")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInput(f"body is not valid JSON: {err}", code="invalid_json") from None
    try:
        return normalise(document, received_at)
    except ValidationError as err:
        field, msg = _field_of(err)
        raise Unprocessable(msg, code="invalid_payload", field=field) from None
    except (InvalidIdentifier, ValueError) as err:
        raise Unprocessable(str(err), code="invalid_payload") from None


def enqueue(events: Sequence[ChannelEvent], queue_url: str) -> None:
    """Send events to the ingest queue; raise ``TransientError`` unless every one is stored by SQS."""
    # already-sent entries of a failed batch are harmless: the event log dedupes by id
    queue.send_batch(queue_url, [queue.Envelope.of(e, e.type.value, channel=e.channel.value) for e in events])


def accept_webhook(
    channel: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> list[ChannelEvent]:
    """Verify and queue one delivery of ``channel``; return the canonical events it became."""
    settings = get_settings()
    now = time.time() if now is None else now
    if normaliser(channel) is None:
        raise NotFound(f"unknown channel {channel!r}", code="unknown_channel", field="channel")
    _check_envelope(headers, body, settings.max_body_bytes)
    signature.verify(
        headers, body, channel_secrets(channel), now=now, tolerance_s=settings.signature_tolerance_s
    )
    events = normalise_delivery(channel, body, datetime.fromtimestamp(now, UTC))
    enqueue(events, settings.ingest_queue_url)
    return events
