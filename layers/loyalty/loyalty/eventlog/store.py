"""Event-log items in the single table (see docs/data-model.md, "Event").

- pk ``EVENT#<event_id>``, sk ``EVENT``: one item per canonical event; the conditional put on
  this key is the dedupe of every redelivery (webhook retries, SQS retries). It carries no index
  key, so neither its put nor its attribution writes an index entry.
- pk ``EVLIST#<yyyy-mm-dd>#<n>``, sk ``L#<first entry>#<digest>``: the day index, one listing per
  day per batch of recorded events (``entries``: ``<occurred_at>#<event_id>`` of each, sorted),
  written once after the batch's puts: about 0.1 WCU per event at the ingest batch of 10 instead
  of a per-event index entry. ``n = digest % EVDAY_SHARDS`` spreads a busy day over that many
  partitions; the digest is of the entries, so a redelivered batch rewrites its own listing, and
  a batch redelivered with other companions lists an event twice (readers dedupe).
  ``EventLog.events_on`` / ``ids_between`` / ``of_day`` read every shard of the day, and the
  ``gsi1`` entries (``EVDAY#<day>#<n>``, ``EVDAY#<day>``) of events recorded before the listings.
- Attribution (issue 16, ``attr``): an event is attributed to its customer by the INSERT of its
  timeline entry (``CUST#<id>`` / ``TL#...``, ``stage = attributed``), which the router routes;
  the event item is not rewritten. Two exceptions write it: ``attributed_to`` (``claim``) when
  the customer has a merge history (the per-event guard that keeps a redelivery after a merge or
  an unmerge from attributing it twice), and ``customer_id`` (``attribute``, the MODIFY the
  router routes, as before the change) for events that carry profile facts. ``expires_at``
  (TTL) is received_at + EVENT_RETENTION_DAYS (the listing's: its latest event's).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

from loyalty.errors import Conflict, NotFound
from loyalty.models.events import ChannelEvent
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table

ENTITY = "event"
LISTING_ENTITY = "event_listing"
#: write shards of the day index (each takes 1/EVDAY_SHARDS of a day's listings)
EVDAY_SHARDS = 64
#: entries per listing item (about 70 bytes each: a listing stays a few KB)
LISTING_SIZE = 100


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def listing_pk(day: date, shard: int) -> str:
    return f"EVLIST#{day.isoformat()}#{shard:02d}"


def legacy_day_keys(day: date) -> list[str]:
    """The ``gsi1`` keys of a day's events recorded before the listings: sharded, then unsharded."""
    return [f"EVDAY#{day.isoformat()}#{n:02d}" for n in range(EVDAY_SHARDS)] + [f"EVDAY#{day.isoformat()}"]


def event_key(event_id: str) -> tuple[str, str]:
    return f"EVENT#{event_id}", "EVENT"


def entry_of(event: ChannelEvent) -> str:
    """An event's place in its day: sorts by time of occurrence, then id."""
    return f"{event.occurred_at.isoformat()}#{event.event_id}"


def _expires_at(event: ChannelEvent, retention_days: int) -> int:
    return int((event.received_at + timedelta(days=retention_days)).timestamp())


def to_item(event: ChannelEvent, retention_days: int) -> Item:
    pk, sk = event_key(event.event_id)
    return {
        "pk": pk,
        "sk": sk,
        "entity": ENTITY,
        "event_id": event.event_id,
        "channel": event.channel.value,
        "type": event.type.value,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.model_dump_json(),
        "expires_at": _expires_at(event, retention_days),
    }


def listing_items(events: Iterable[ChannelEvent], retention_days: int) -> list[Item]:
    """The day-index listings of ``events``: per day, chunks of ``LISTING_SIZE`` sorted entries."""
    by_day: defaultdict[date, dict[str, int]] = defaultdict(dict)
    for event in events:
        by_day[event.occurred_at.date()][entry_of(event)] = _expires_at(event, retention_days)
    items: list[Item] = []
    for day, expiring in sorted(by_day.items()):
        entries = sorted(expiring)
        for start in range(0, len(entries), LISTING_SIZE):
            chunk = entries[start : start + LISTING_SIZE]
            digest = _digest("\n".join(chunk))
            items.append(
                {
                    "pk": listing_pk(day, int(digest[:8], 16) % EVDAY_SHARDS),
                    "sk": f"L#{chunk[0]}#{digest[:16]}",
                    "entity": LISTING_ENTITY,
                    "entries": chunk,
                    "expires_at": max(expiring[e] for e in chunk),
                }
            )
    return items


def from_item(item: Item) -> ChannelEvent:
    return ChannelEvent.model_validate_json(item["data"])


class EventLog:
    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()

    def put(self, event: ChannelEvent) -> bool:
        """Store ``event`` once, not yet indexed (a batch indexes its events together, ``index``);
        False when it was already recorded (a duplicate delivery)."""
        return self.table.put_new(to_item(event, get_settings().event_retention_days))

    def index(self, events: Iterable[ChannelEvent]) -> None:
        """List ``events`` in the day index (every event a delivery carried, new or duplicate:
        a crash between a put and its listing is healed by the redelivery)."""
        for item in listing_items(events, get_settings().event_retention_days):
            self.table.put(item)

    def logged(self, event: ChannelEvent) -> ChannelEvent:
        """The version of ``event`` the log holds (a duplicate delivery may differ, e.g. in time)."""
        item = self.table.get(*event_key(event.event_id))
        return event if item is None else from_item(item)

    def record(self, event: ChannelEvent) -> bool:
        """Store and index one event (writers of single events); False when it was a duplicate."""
        new = self.put(event)
        self.index([event if new else self.logged(event)])
        return new

    def get(self, event_id: str) -> Item:
        item = self.table.get(*event_key(event_id))
        if item is None:
            raise NotFound(f"event {event_id} not found")
        return item

    def attribute(self, event_id: str, customer_id: str) -> bool:
        """Set the customer an event belongs to, once (its MODIFY is routed); False when it already
        had one, or was claimed (``claim``)."""
        pk, sk = event_key(event_id)
        try:
            self.table.update(
                pk,
                sk,
                "SET customer_id = :c",
                condition="attribute_exists(pk) AND attribute_not_exists(customer_id)"
                " AND attribute_not_exists(attributed_to)",
                values={":c": customer_id},
                return_values="NONE",
            )
        except Conflict:
            return False
        return True

    def claim(self, event_id: str, customer_id: str) -> bool:
        """Claim the event for ``customer_id`` before its timeline entry attributes it (the guard of
        customers with a merge history); True when it is, or already was, claimed by that customer.
        ``attributed_to`` is not what the router reads: the claim itself routes nothing."""
        pk, sk = event_key(event_id)
        try:
            self.table.update(
                pk,
                sk,
                "SET attributed_to = :c",
                condition="attribute_exists(pk) AND attribute_not_exists(customer_id)"
                " AND (attribute_not_exists(attributed_to) OR attributed_to = :c)",
                values={":c": customer_id},
                return_values="NONE",
            )
        except Conflict:
            return False
        return True

    def _entries(self, day: date, lo: str, hi: str) -> list[str]:
        """The day's entries with ``lo <= entry <= hi``, deduplicated, in time order."""
        found: set[str] = set()
        for shard in range(EVDAY_SHARDS):
            # a listing's key starts with its first entry: later ones may still fall in [lo, hi]
            for item in self.table.query_all(listing_pk(day, shard), sk_between=("L#", f"L#{hi}~")):
                found.update(e for e in item["entries"] if lo <= e <= hi)
        for pk in legacy_day_keys(day):
            found.update(
                str(item["gsi1sk"]) for item in self.table.query_all(pk, index="gsi1", sk_between=(lo, hi))
            )
        return sorted(found)

    def _events(self, entries: list[str]) -> list[ChannelEvent]:
        """The events of ``entries``, in their order (one BatchGetItem per 100): expired ones and
        entries that do not match the logged event (a duplicate listed at another time) skipped."""
        ids = [e.split("#", 1)[1] for e in entries]  # occurred_at has no "#"
        items = {str(i["event_id"]): from_item(i) for i in self.table.batch_get([event_key(i) for i in ids])}
        return [items[i] for e, i in zip(entries, ids, strict=True) if i in items and entry_of(items[i]) == e]

    def events_on(self, day: date) -> Iterator[ChannelEvent]:
        """Every event that occurred on ``day`` (UTC), oldest first."""
        entries = self._entries(day, "0", "~")
        for start in range(0, len(entries), 100):
            yield from self._events(entries[start : start + 100])

    def ids_between(self, start: datetime, end: datetime) -> Iterator[str]:
        """Ids of the events that occurred in ``[start, end)``, oldest first (for replays)."""
        lo, hi = start.isoformat(), end.isoformat()
        day = start.date()
        while day <= end.date():
            for entry in self._entries(day, lo, hi):
                if entry < hi:
                    yield entry.split("#", 1)[1]
            day += timedelta(days=1)

    def of_day(
        self, day: date, *, limit: int = 100, cursor: dict[str, Any] | None = None
    ) -> tuple[list[ChannelEvent], dict[str, Any] | None]:
        """One page of the events that occurred on ``day``, oldest first; the cursor is the last
        entry returned (``{"after": <occurred_at>#<event_id>}``)."""
        after = str(cursor["after"]) if cursor else ""
        entries = [e for e in self._entries(day, after or "0", "~") if e > after]
        page = entries[:limit]
        more = len(entries) > limit
        return self._events(page), ({"after": page[-1]} if more else None)
