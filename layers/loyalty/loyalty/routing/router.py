"""Route event-log changes (stream records) to the queues of the concerns that need them.

Two stages of an event reach the router through the table's stream:
- ``recorded``: the event item was inserted (a new canonical event);
- ``attributed``: identity resolution attributed it to its customer: the INSERT of its timeline
  entry (``stage = attributed``; ``loyalty.routing.service`` reads the event and the customer's
  REDIRECT and plans it as the MODIFY below), or, for events with profile facts and events
  attributed before that change, the event item's MODIFY that set its ``customer_id``.
Consumers that need the customer (points, analytics) receive the attributed stage; those that
do not (identity itself, stock) receive the recorded one. Events with no identifiers at all are
never attributed, so analytics takes them at the recorded stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from loyalty.errors import DomainError, TransientError
from loyalty.eventlog.store import ENTITY
from loyalty.models.events import ChannelEvent, EventType
from loyalty.models.merges import MERGE_ENTITY, CustomerMerged
from loyalty.models.reservations import ACTIVE_STATUSES, RESERVATION_ENTITY, ReservationLapsed
from loyalty.observability import logger
from loyalty.settings import Settings

Stage = Literal["recorded", "attributed"]

STOCK_TYPES = frozenset(
    {
        EventType.ORDER_PLACED,
        EventType.ORDER_COMPLETED,
        EventType.ORDER_CANCELLED,
        EventType.ORDER_REFUNDED,
        EventType.STOCK_COUNTED,
        EventType.STOCK_ADJUSTED,
    }
)
POINTS_TYPES = frozenset({EventType.ORDER_COMPLETED, EventType.ORDER_REFUNDED, EventType.ORDER_CANCELLED})


class RoutedEvent(BaseModel):
    """What a concern's queue carries: the canonical event and, once known, its customer."""

    model_config = ConfigDict(defer_build=True)

    stage: Stage
    customer_id: str | None = None
    event: ChannelEvent


#: the ``type`` attribute of a message carrying several routed events (``RoutedBundle``)
BUNDLE_TYPE = "routed.bundle"
#: routed events per bundle (a message stays far below SQS's size limit)
BUNDLE_SIZE = 10


class RoutedBundle(BaseModel):
    """Several routed events of one stream batch in one message, in the batch's order, for a
    concern that applies each one idempotently: fewer messages, so fewer sends and polls."""

    model_config = ConfigDict(defer_build=True)

    events: list[RoutedEvent]


def routed_events(body: str, kind: str | None) -> list[RoutedEvent]:
    """The routed events a concern-queue message carries: a bundle's, or the lone event.

    Malformed: raises (pydantic's ValidationError, a ValueError)."""
    if kind == BUNDLE_TYPE:
        return RoutedBundle.model_validate_json(body).events
    return [RoutedEvent.model_validate_json(body)]


def apply_each[T](items: Iterable[T], apply: Callable[[T], object]) -> DomainError | TransientError | None:
    """Apply every item of one message in order, each idempotently; the first error, if any.

    An item that fails does not stop the others; the caller then fails the record (raises the
    error), so the message is redelivered whole and its applied items are no-ops (poison ends in
    the DLQ with its bundle)."""
    error: DomainError | TransientError | None = None
    for position, item in enumerate(items):
        try:
            apply(item)
        except (DomainError, TransientError) as err:
            event_id = item.event.event_id if isinstance(item, RoutedEvent) else None
            extra = {"position": position, "event_id": event_id, "why": str(err)}
            logger.warning("item of a message failed", extra=extra)
            error = error or err
    return error


@dataclass(frozen=True)
class Route:
    concern: str
    queue_setting: str
    wants: Callable[[Stage, ChannelEvent], bool]
    bundles: bool = False  # its consumer takes ``RoutedBundle`` messages too


ROUTES: tuple[Route, ...] = (
    Route(
        "identity",
        "identity_queue_url",
        lambda stage, e: stage == "recorded" and bool(e.identifiers),
        bundles=True,
    ),
    Route(
        "stock",
        "stock_queue_url",
        lambda stage, e: stage == "recorded" and e.type in STOCK_TYPES,
        bundles=True,
    ),
    Route(
        "points",
        "points_queue_url",
        lambda stage, e: stage == "attributed" and e.type in POINTS_TYPES,
        bundles=True,
    ),
    Route(
        "analytics",
        "analytics_queue_url",
        lambda stage, e: stage == "attributed" or (stage == "recorded" and not e.identifiers),
        bundles=True,
    ),
    # messaging (issue 15): a provider's bounce marks the address undeliverable (loyalty.notify.feedback)
    Route(
        "notify_feedback",
        "notify_feedback_queue_url",
        lambda stage, e: stage == "recorded" and e.type == EventType.MESSAGE_BOUNCED,
    ),
)

#: what the router needs configured: every concern queue (an empty one would drop its messages)
QUEUE_SETTINGS: tuple[str, ...] = tuple(r.queue_setting for r in ROUTES)


def stage_of(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> Stage | None:
    """The stage a stream record represents, or None when it is not for the router."""
    if not new or new.get("entity") != ENTITY:
        return None
    if not old:
        return "recorded"
    if new.get("customer_id") and not old.get("customer_id"):
        return "attributed"
    return None


Message = RoutedEvent | CustomerMerged | ReservationLapsed


def lapsed_reservation(
    new: Mapping[str, Any] | None, old: Mapping[str, Any] | None
) -> ReservationLapsed | None:
    """A reservation removed (by TTL: the stream filter only lets those through) while active."""
    if new or not old or old.get("entity") != RESERVATION_ENTITY or old.get("status") not in ACTIVE_STATUSES:
        return None
    return ReservationLapsed.model_validate(dict(old))


def plan(
    new: Mapping[str, Any] | None, old: Mapping[str, Any] | None, settings: Settings
) -> list[tuple[str, Message]]:
    """(queue url, message) pairs for one stream record; empty when nothing is to be routed."""
    lapsed = lapsed_reservation(new, old)
    if lapsed is not None:
        return [(settings.stock_queue_url, lapsed)] if settings.stock_queue_url else []
    if new and not old and new.get("entity") == MERGE_ENTITY:
        merged = CustomerMerged.model_validate_json(new["data"])
        return [(settings.points_queue_url, merged)] if settings.points_queue_url else []
    stage = stage_of(new, old)
    if stage is None or new is None:
        return []
    event = ChannelEvent.model_validate_json(new["data"])
    message = RoutedEvent(stage=stage, customer_id=new.get("customer_id"), event=event)
    out: list[tuple[str, Message]] = []
    for route in ROUTES:
        url = getattr(settings, route.queue_setting)
        if url and route.wants(stage, event):
            out.append((url, message))
    return out
