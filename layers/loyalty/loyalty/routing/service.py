"""Send stream records' routed messages to the concern queues: one request per queue and ten."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loyalty import customers, queue
from loyalty.errors import TransientError
from loyalty.eventlog.store import event_key
from loyalty.models.reservations import ReservationLapsed
from loyalty.routing.router import (
    BUNDLE_SIZE,
    BUNDLE_TYPE,
    QUEUE_SETTINGS,
    ROUTES,
    Message,
    RoutedBundle,
    RoutedEvent,
    plan,
)
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table

Image = Mapping[str, Any] | None
#: what the event item's attribution MODIFY carried (new, old), from a timeline entry's INSERT
Attribution = tuple[Item, Item] | None


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
    ``SendMessage`` per message); a queue whose consumer takes bundles (identity, stock, points,
    analytics: every concern's but notify_feedback's) gets the batch's routed events
    ``BUNDLE_SIZE`` to a message, in the batch's order (a lone event goes as itself, as do the
    stock queue's lapsed reservations and the points queue's merges). A
    record is reported failed when it could not be planned or when any message carrying it was
    not taken; it is retried whole, and consumers are idempotent by event id, so what did go
    through is applied once.
    """
    settings = get_settings(*QUEUE_SETTINGS)
    bundled = {getattr(settings, r.queue_setting) for r in ROUTES if r.bundles}
    result = Routing()
    by_queue: dict[str, list[tuple[int, Message]]] = {}
    attributions = _attributions(changes)
    for index, change in enumerate(changes):
        images = attributions.get(index, change)
        if isinstance(images, str):
            result.failed[index] = images
            continue
        if images is None:
            continue  # attributed by the event's own MODIFY
        try:
            pairs = plan(*images, settings)
        except (ValueError, KeyError, TypeError) as err:  # pydantic's ValidationError is a ValueError
            result.failed[index] = f"unroutable: {err}"
            continue
        for url, message in pairs:
            by_queue.setdefault(url, []).append((index, message))
    for url, items in by_queue.items():
        envelopes = _bundled(items) if url in bundled else [([i], _envelope(m)) for i, m in items]
        name = url.rsplit("/", 1)[-1]
        unsent = set(queue.send_each(url, [envelope for _, envelope in envelopes]))
        for position, (indexes, _) in enumerate(envelopes):
            for index in indexes:
                if position in unsent:
                    result.failed.setdefault(index, f"queue {name} did not take its message")
                elif name not in result.sent.setdefault(index, []):
                    result.sent[index].append(name)
    for index in result.failed:
        result.sent.pop(index, None)
    return result


def _attributions(changes: Sequence[tuple[Image, Image]]) -> dict[int, Attribution | str]:
    """The timeline INSERTs of the batch that attribute an event, as the (new, old) images of the
    event item's attribution MODIFY (``plan`` routes them exactly as it routed that MODIFY): the
    events read in one eventually consistent BatchGetItem for the batch (those it misses, not yet
    replicated, read again consistently with the customers' REDIRECTs, which are always read
    consistently: docs/architecture.md, "Reads a conditional write guards"), and the customer is
    the live one (an absorbed customer's survivor when the entry is routed).
    None: nothing to route (the event was attributed by its own MODIFY, or an erasure anonymised
    it: the entry comes from a stale delivery of an erased person's event); a string: why the
    record cannot be routed now (it is retried)."""
    entries = {
        i: (str(new.get("event_id") or ""), str(new.get("customer_id") or ""))
        for i, (new, old) in enumerate(changes)
        if new is not None and customers.attributes_event(new, old)
    }
    if not entries:
        return {}
    table = Table()
    named = [(e, c) for e, c in entries.values() if e and c]
    found = _read(table, [event_key(e) for e, _ in named], consistent=False)
    missed = [event_key(e) for e, _ in named if event_key(e) not in found]
    found |= _read(table, missed + [customers.redirect_key(c) for _, c in named], consistent=True)
    return {i: _attribution(event_id, cid, found, table) for i, (event_id, cid) in entries.items()}


def _read(table: Table, keys: list[tuple[str, str]], *, consistent: bool) -> dict[tuple[str, str], Item]:
    items = table.batch_get(keys, consistent=consistent) if keys else []
    return {(str(i["pk"]), str(i["sk"])): i for i in items}


def _attribution(
    event_id: str, cid: str, found: Mapping[tuple[str, str], Item], table: Table
) -> Attribution | str:
    """One entry's MODIFY images (see ``_attributions``), from what the batch read."""
    event = found.get(event_key(event_id)) if event_id and cid else None
    if event is None:
        return f"unroutable: event {event_id!r} of the timeline entry is not in the log"
    if event.get("customer_id") or event.get("anonymised"):
        return None  # attributed by its own MODIFY; or erased since (a stale delivery)
    survivor = customers.survivor_named([found.get(customers.redirect_key(cid))])
    live = cid if survivor is None else customers.resolve(table, survivor)
    recorded = {k: v for k, v in event.items() if k not in ("customer_id", "attributed_to")}
    return {**recorded, "customer_id": live}, recorded


def _envelope(message: Message) -> queue.Envelope:
    return queue.Envelope.of(message, _type_of(message))


def _bundled(items: list[tuple[int, Message]]) -> list[tuple[list[int], queue.Envelope]]:
    """Routed events ``BUNDLE_SIZE`` to a message (with the records they came from); others alone."""
    out: list[tuple[list[int], queue.Envelope]] = []
    events = [(i, m) for i, m in items if isinstance(m, RoutedEvent)]
    out.extend(([i], _envelope(m)) for i, m in items if not isinstance(m, RoutedEvent))
    for start in range(0, len(events), BUNDLE_SIZE):
        chunk = events[start : start + BUNDLE_SIZE]
        if len(chunk) == 1:
            out.append(([chunk[0][0]], _envelope(chunk[0][1])))
            continue
        bundle = RoutedBundle(events=[m for _, m in chunk if isinstance(m, RoutedEvent)])
        out.append(([i for i, _ in chunk], queue.Envelope.of(bundle, BUNDLE_TYPE)))
    return out


def route_record(new_image: Image, old_image: Image) -> list[str]:
    """Route one record; returns the queue names written to (TransientError when one failed)."""
    result = route_records([(new_image, old_image)])
    if result.failed:
        raise TransientError(result.failed[0])
    return result.sent.get(0, [])
