"""Identity resolution on moto: events/s and DynamoDB request units per event, per case.

Cases: an event whose identifiers are all known; an event creating a new customer; an event
attaching a new identifier to a known customer; and an event linking two customers that each
hold K identifiers and L timeline entries (a merge: lock, K/32 move steps, finalize). Request
units are summed from ``ReturnConsumedCapacity`` (``loyalty.store.table.CAPACITY``).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def main(quick: bool = True) -> dict[str, Any]:
    from bench.common import emulated
    from loyalty.eventlog.store import EventLog
    from loyalty.identity.policy import LinkPolicy
    from loyalty.identity.resolve import Resolver
    from loyalty.models.events import ChannelEvent, EngagementPayload
    from loyalty.models.identifiers import Identifier, IdentifierType
    from loyalty.store import table as table_mod

    n, merges, k, timeline = (50, 5, 10, 20) if quick else (1000, 50, 40, 100)
    base = datetime(2026, 11, 1, tzinfo=UTC)

    def ev(*idents: tuple[str, str], minutes: int = 0) -> ChannelEvent:
        event = ChannelEvent(
            event_id=str(uuid.uuid4()),
            channel="web",
            type="product.viewed",
            occurred_at=base + timedelta(minutes=minutes),
            source_event_id=str(uuid.uuid4()),
            identifiers=[Identifier(type=IdentifierType(t), value=v) for t, v in idents],
            payload=EngagementPayload(sku="SKU-1"),
        )
        EventLog().record(event)
        return event

    def measure(events: list[ChannelEvent], resolver: Any) -> dict[str, float]:
        table_mod.CAPACITY = capacity = table_mod.Capacity()
        started = time.perf_counter()
        for event in events:
            resolver.resolve(event)
        elapsed = time.perf_counter() - started
        table_mod.CAPACITY = None
        count = len(events)
        return {
            "events": count,
            "events_per_s": round(count / elapsed, 1),
            "read_units_per_event": round(capacity.read_units / count, 2),
            "write_units_per_event": round(capacity.write_units / count, 2),
            "calls_per_event": round(sum(capacity.calls.values()) / count, 2),
        }

    with emulated("ResolveIdentityFunction", quiet=False):
        policy = LinkPolicy.from_settings("", "device_id=1000", 3)
        resolver = Resolver(policy=policy)
        results: dict[str, Any] = {}

        new_events = [ev(("email", f"new{i}@x.com"), ("phone", f"6{i:08d}")) for i in range(n)]
        results["new_customer"] = measure(new_events, resolver)
        known = [ev(("email", f"new{i % n}@x.com"), minutes=i) for i in range(n)]
        results["known_identifiers"] = measure(known, resolver)
        attach = [ev(("email", f"new{i}@x.com"), ("device_id", f"att-{i}"), minutes=i) for i in range(n)]
        results["attach_one_identifier"] = measure(attach, resolver)

        links = []
        for m in range(merges):
            a = [("device_id", f"m{m}a{j}") for j in range(k)]
            b = [("device_id", f"m{m}b{j}") for j in range(k)]
            resolver.resolve(ev(*a))
            resolver.resolve(ev(*b))
            for t in range(timeline - 1):
                resolver.resolve(ev(a[0], minutes=t))
                resolver.resolve(ev(b[0], minutes=t))
            links.append(ev(a[0], b[0], minutes=10_000))
        merged = measure(links, resolver)
        merged.update(identifiers_per_customer=k, timeline_entries_per_customer=timeline)
        results["merge_two_customers"] = merged
    results["note"] = "moto in process on one core; AWS latency differs, request units do not"
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick=False), indent=2))
