"""Send stream records' routed messages to the concern queues: one request per queue and ten."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loyalty import queue
from loyalty.errors import TransientError
from loyalty.models.reservations import ReservationLapsed
from loyalty.routing.router import QUEUE_SETTINGS, Message, RoutedEvent, plan
from loyalty.settings import get_settings

Image = Mapping[str, Any] | None


def _type_of(message: Message) -> str:
    if isinstance(message, RoutedEvent):
        return message.event.type.value
    if isinstance(message, ReservationLapsed):
        return message.kind
    return f"customer.{message.kind}d"


@dataclass
class Routing:
    """What a batch of records became: the queues each record was sent to, and the records to retry."""

    sent: dict[int, list[str]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)  # record index -> why


def route_records(changes: Sequence[tuple[Image, Image]]) -> Routing:
    """Route a batch of records (images already deserialised), grouped per destination queue.

    Each queue gets ``SendMessageBatch`` requests of up to ten messages (instead of one
    ``SendMessage`` per message). A record is reported failed when it could not be planned or
    when any of its messages was not taken; it is retried whole, and consumers are idempotent by
    event id, so its messages that did go through are applied once.
    """
    settings = get_settings(*QUEUE_SETTINGS)
    result = Routing()
    by_queue: dict[str, list[tuple[int, queue.Envelope]]] = {}
    for index, (new, old) in enumerate(changes):
        try:
            pairs = plan(new, old, settings)
        except (ValueError, KeyError, TypeError) as err:  # pydantic's ValidationError is a ValueError
            result.failed[index] = f"unroutable: {err}"
            continue
        for url, message in pairs:
            by_queue.setdefault(url, []).append((index, queue.Envelope.of(message, _type_of(message))))
    for url, items in by_queue.items():
        name = url.rsplit("/", 1)[-1]
        unsent = set(queue.send_each(url, [envelope for _, envelope in items]))
        for position, (index, _) in enumerate(items):
            if position in unsent:
                result.failed.setdefault(index, f"queue {name} did not take its message")
            else:
                result.sent.setdefault(index, []).append(name)
    for index in result.failed:
        result.sent.pop(index, None)
    return result


def route_record(new_image: Image, old_image: Image) -> list[str]:
    """Route one record; returns the queue names written to (TransientError when one failed)."""
    result = route_records([(new_image, old_image)])
    if result.failed:
        raise TransientError(result.failed[0])
    return result.sent.get(0, [])
