"""KPI aggregation on moto: events/s and write request units per counted event (and per duplicate)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any


def main(quick: bool = True) -> dict[str, Any]:
    from bench.common import emulated
    from loyalty.analytics.kpis import Kpis
    from loyalty.ingest.service import normalise_delivery
    from loyalty.routing.router import RoutedEvent
    from loyalty.store import table as table_mod
    from tests.support.lambdas import load_event

    n = 80 if quick else 1000
    now = datetime(2026, 11, 23, tzinfo=UTC)
    base = load_event("webhooks/pos_sale.json")
    with emulated("AggregateKpisFunction"):
        routed = []
        for i in range(n):
            doc = {**base, "ticket_id": f"T-K{i}"}
            (event,) = normalise_delivery("pos", json.dumps(doc).encode(), now)
            routed.append(RoutedEvent(stage="attributed", customer_id=f"c_{i % 50}", event=event))
        kpis = Kpis()
        table_mod.CAPACITY = capacity = table_mod.Capacity()
        started = time.perf_counter()
        for r in routed:
            kpis.apply(r)
        elapsed = time.perf_counter() - started
        first = capacity.write_units
        failed_before = capacity.failed_writes
        for r in routed[: n // 3]:
            kpis.apply(r)
        table_mod.CAPACITY = None
        day = kpis.daily(routed[0].event.occurred_at.date())["channels"]["pos"]
        assert day["orders"] == n, day
    return {
        "events": n,
        "events_per_s": round(n / elapsed, 1),
        "write_units_per_counted_event": round(first / n, 2),
        "read_units_per_counted_event": round(capacity.read_units / n, 2),
        "failed_conditional_writes_per_duplicate": round(
            (capacity.failed_writes - failed_before) / (n // 3), 2
        ),
        "note": "a sale = 1 transaction (marker + counters: 2 items, 4 WCU) + 1 transaction "
        "(active-customer marker + counter) refused when the customer was already active that day. "
        "moto deep-copies all tables on every transaction, so events/s on moto falls as the table "
        "grows: read it as an emulator figure; the units are DynamoDB's billing rule.",
    }


if __name__ == "__main__":
    print(json.dumps(main(quick=False), indent=2))
