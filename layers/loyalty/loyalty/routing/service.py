"""Send one stream record's routed messages to the concern queues."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loyalty import queue
from loyalty.models.reservations import ReservationLapsed
from loyalty.routing.router import QUEUE_SETTINGS, Message, RoutedEvent, plan
from loyalty.settings import get_settings


def _type_of(message: Message) -> str:
    if isinstance(message, RoutedEvent):
        return message.event.type.value
    if isinstance(message, ReservationLapsed):
        return message.kind
    return f"customer.{message.kind}d"


def route_record(new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None) -> list[str]:
    """Route one record (images already deserialised); returns the queue urls written to.

    A failure raises, so the stream batch reports this record and the stream retries it;
    consumers are idempotent by event id, so a message sent twice is applied once.
    """
    sent = []
    for url, message in plan(new_image, old_image, get_settings(*QUEUE_SETTINGS)):
        queue.send(url, queue.Envelope.of(message, _type_of(message)))
        sent.append(url.rsplit("/", 1)[-1])
    return sent
