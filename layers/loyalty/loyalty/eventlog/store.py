"""Event-log items in the single table (see docs/data-model.md, "Event").

- pk ``EVENT#<event_id>``, sk ``EVENT``: one item per canonical event; the conditional put on
  this key is the dedupe of every redelivery (webhook retries, SQS retries).
- GSI1 ``gsi1pk = EVDAY#<yyyy-mm-dd>``, ``gsi1sk = <occurred_at>#<event_id>``: events of a day.
- ``customer_id`` is set once, when identity resolution has attributed the event (a MODIFY the
  router reacts to); ``expires_at`` (TTL) is occurred_at + EVENT_RETENTION_DAYS.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from loyalty.errors import Conflict, NotFound
from loyalty.models.events import ChannelEvent
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table

ENTITY = "event"


def event_key(event_id: str) -> tuple[str, str]:
    return f"EVENT#{event_id}", "EVENT"


def to_item(event: ChannelEvent, retention_days: int) -> Item:
    pk, sk = event_key(event.event_id)
    occurred = event.occurred_at.isoformat()
    return {
        "pk": pk,
        "sk": sk,
        "entity": ENTITY,
        "gsi1pk": f"EVDAY#{event.occurred_at.date().isoformat()}",
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

    def of_day(
        self, day: date, *, limit: int = 100, cursor: dict[str, Any] | None = None
    ) -> tuple[list[ChannelEvent], dict[str, Any] | None]:
        """One page of the events that occurred on ``day``, oldest first."""
        items, last = self.table.query(
            f"EVDAY#{day.isoformat()}", index="gsi1", limit=limit, start_key=cursor
        )
        return [from_item(i) for i in items], last

    def ids_between(self, start: datetime, end: datetime) -> Iterator[str]:
        """Ids of the events that occurred in ``[start, end]`` (UTC), oldest first, day by day.

        The one place that knows how the per-day index is keyed (the replay tool reads it).
        """
        lo, hi = start.astimezone(UTC), end.astimezone(UTC)
        day = lo.date()
        while day <= hi.date():
            for item in self.table.query_all(
                f"EVDAY#{day.isoformat()}", index="gsi1", sk_between=(lo.isoformat(), f"{hi.isoformat()}#~")
            ):
                yield str(item["event_id"])
            day += timedelta(days=1)
