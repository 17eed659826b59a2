"""Event-log items in the single table (see docs/data-model.md, "Event").

- pk ``EVENT#<event_id>``, sk ``EVENT``: one item per canonical event; the conditional put on
  this key is the dedupe of every redelivery (webhook retries, SQS retries).
- GSI1 ``gsi1pk = EVDAY#<yyyy-mm-dd>#<n>``, ``gsi1sk = <occurred_at>#<event_id>``: events of a
  day, write-sharded: ``n = sha256(event_id) % EVDAY_SHARDS``, so a busy day spreads its index
  writes over ``EVDAY_SHARDS`` partitions; ``EventLog.events_on`` / ``ids_between`` fan out over
  them (and the unsharded ``EVDAY#<day>`` of events recorded before the sharding) and merge.
- ``customer_id`` is set once, when identity resolution has attributed the event (a MODIFY the
  router reacts to); ``expires_at`` (TTL) is occurred_at + EVENT_RETENTION_DAYS.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from loyalty.errors import Conflict, NotFound
from loyalty.models.events import ChannelEvent
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table

ENTITY = "event"
#: write shards of the per-day index (each takes 1/EVDAY_SHARDS of a day's event writes)
EVDAY_SHARDS = 64


def day_shard(event_id: str) -> int:
    return int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % EVDAY_SHARDS


def day_keys(day: date) -> list[str]:
    """Every index key of a day: its shards, then the unsharded key of older items."""
    return [f"EVDAY#{day.isoformat()}#{n:02d}" for n in range(EVDAY_SHARDS)] + [f"EVDAY#{day.isoformat()}"]


def event_key(event_id: str) -> tuple[str, str]:
    return f"EVENT#{event_id}", "EVENT"


def to_item(event: ChannelEvent, retention_days: int) -> Item:
    pk, sk = event_key(event.event_id)
    occurred = event.occurred_at.isoformat()
    return {
        "pk": pk,
        "sk": sk,
        "entity": ENTITY,
        "gsi1pk": f"EVDAY#{event.occurred_at.date().isoformat()}#{day_shard(event.event_id):02d}",
        "gsi1sk": f"{occurred}#{event.event_id}",
        "event_id": event.event_id,
        "channel": event.channel.value,
        "type": event.type.value,
        "occurred_at": occurred,
        "data": event.model_dump_json(),
        "expires_at": int((event.received_at + timedelta(days=retention_days)).timestamp()),
    }


def from_item(item: Item) -> ChannelEvent:
    return ChannelEvent.model_validate_json(item["data"])


class EventLog:
    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()

    def record(self, event: ChannelEvent) -> bool:
        """Store ``event`` once; False when it was already recorded (a duplicate delivery)."""
        return self.table.put_new(to_item(event, get_settings().event_retention_days))

    def get(self, event_id: str) -> Item:
        item = self.table.get(*event_key(event_id))
        if item is None:
            raise NotFound(f"event {event_id} not found")
        return item

    def attribute(self, event_id: str, customer_id: str) -> bool:
        """Set the customer an event belongs to, once; False when it already had one."""
        pk, sk = event_key(event_id)
        try:
            self.table.update(
                pk,
                sk,
                "SET customer_id = :c",
                condition="attribute_exists(pk) AND attribute_not_exists(customer_id)",
                values={":c": customer_id},
                return_values="NONE",
            )
        except Conflict:
            return False
        return True

    def _merged(self, day: date, lo: str, hi: str) -> Iterator[Item]:
        """The day's index entries with ``lo <= gsi1sk <= hi`` from every shard, in time order."""
        shards = (self.table.query_all(pk, index="gsi1", sk_between=(lo, hi)) for pk in day_keys(day))
        return heapq.merge(*shards, key=lambda item: str(item["gsi1sk"]))

    def events_on(self, day: date) -> Iterator[ChannelEvent]:
        """Every event that occurred on ``day`` (UTC), oldest first (one query per shard)."""
        for item in self._merged(day, "0", "~"):
            yield from_item(item)

    def ids_between(self, start: datetime, end: datetime) -> Iterator[str]:
        """Ids of the events that occurred in ``[start, end)``, oldest first (for replays)."""
        lo, hi = start.isoformat(), end.isoformat()
        day = start.date()
        while day <= end.date():
            for item in self._merged(day, lo, hi):
                if str(item["gsi1sk"]) < hi:
                    yield str(item["event_id"])
            day += timedelta(days=1)

    def of_day(
        self, day: date, *, limit: int = 100, cursor: dict[str, Any] | None = None
    ) -> tuple[list[ChannelEvent], dict[str, Any] | None]:
        """One page of the events that occurred on ``day``, oldest first; the cursor is the last
        entry returned (``{"after": <gsi1sk>}``)."""
        after = str(cursor["after"]) if cursor else ""
        items: list[Item] = []
        for item in self._merged(day, after or "0", "~"):
            if str(item["gsi1sk"]) <= after:
                continue
            if len(items) == limit:
                return [from_item(i) for i in items], {"after": items[-1]["gsi1sk"]}
            items.append(item)
        return [from_item(i) for i in items], None
