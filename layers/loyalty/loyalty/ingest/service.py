"""Accept one webhook delivery: check, verify, normalise, queue. Nothing is half-applied."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from loyalty.ingest.providers import Connector, Delivery, connector
from loyalty.ingest.secrets import ProviderSecrets, provider_secrets
from loyalty.models.events import ChannelEvent
from loyalty.models.identifiers import InvalidIdentifier
from loyalty.settings import get_settings


@dataclass(frozen=True)
class Accepted:
    """What a delivery became, and the status its provider expects on success."""

    events: list[ChannelEvent]
    status: int = 202
    ping: bool = False


def _field_of(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    parts = [str(part) for part in first["loc"] if part != "delivery"]
    if first["type"] == "union_tag_invalid":  # the discriminator itself is the field at fault
        parts.append(str(first.get("ctx", {}).get("discriminator", "")).strip("'"))
    loc = ".".join(p for p in parts if p)
    return loc or "body", first["msg"]


def _connector(provider: str) -> Connector:
    found = connector(provider)
    if found is None:
        raise NotFound(f"unknown provider {provider!r}", code="unknown_channel", field="channel")
    return found


def _check_envelope(headers: Mapping[str, str], body: bytes, max_bytes: int) -> None:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"content type must be application/json, got {media or 'none'!r}")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {max_bytes}")


def parse_json(body: bytes) -> object:
    """The JSON document of ``body``; 400 for anything else, however hostile (deep nesting too)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInput(f"body is not valid JSON: {err}", code="invalid_json") from None
    except RecursionError:
        raise InvalidInput("body is nested too deeply", code="invalid_json") from None


def normalise_delivery(
    provider: str,
    body: bytes,
    received_at: datetime,
    headers: Mapping[str, str] | None = None,
    secrets: ProviderSecrets | None = None,
) -> list[ChannelEvent]:
    """Parse and normalise a verified body into canonical events (400/422 on bad input)."""
    conn = _connector(provider)
    delivery = Delivery.of(provider, headers or {}, body, received_at, secrets)
    document = parse_json(body)
    try:
        return conn.normalise(document, delivery)
    except ValidationError as err:
        field, msg = _field_of(err)
        raise Unprocessable(msg, code="invalid_payload", field=field) from None
    except (InvalidIdentifier, ValueError) as err:
        raise Unprocessable(str(err), code="invalid_payload") from None
    except RecursionError:
        raise InvalidInput("body is nested too deeply", code="invalid_json") from None


def enqueue(events: Sequence[ChannelEvent], queue_url: str) -> None:
    """Send events to the ingest queue; raise ``TransientError`` unless every one is stored by SQS."""
    # already-sent entries of a failed batch are harmless: the event log dedupes by id
    queue.send_batch(queue_url, [queue.Envelope.of(e, e.type.value, channel=e.channel.value) for e in events])


def accept_webhook(
    provider: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> Accepted:
    """Verify and queue one delivery of ``provider``; return the canonical events it became."""
    settings = get_settings()
    now = time.time() if now is None else now
    conn = _connector(provider)
    received_at = datetime.fromtimestamp(now, UTC)
    if conn.is_ping is not None and conn.is_ping(Delivery.of(provider, headers, body, received_at)):
        return Accepted(events=[], status=200, ping=True)
    _check_envelope(headers, body, conn.max_body_bytes or settings.max_body_bytes)
    secrets = provider_secrets(provider)
    delivery = Delivery.of(provider, headers, body, received_at, secrets)
    conn.verify(delivery, now, settings.signature_tolerance_s)
    events = normalise_delivery(provider, body, received_at, delivery.headers, secrets)
    enqueue(events, settings.ingest_queue_url)
    return Accepted(events=events, status=conn.ack_status)
