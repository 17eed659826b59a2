"""Points accrual through the ``apply_points`` consumer on moto: events/s and request units.

Reports accrual events/s (SQS batches of 10 through the real handler), and the DynamoDB read and
write request units per order event (summed from ``ReturnConsumedCapacity``) with the number of
items in the ledger transaction. The minimum a correct design needs is a 2-item transaction
(entry + balance) plus the event-id dedupe record; this design writes 4 items (dedupe, lot,
entry, balance), 5 when an order-level bonus adds a ``bonus`` entry. moto copies the whole table
on every transaction, so throughput here falls as the table grows: it is a lower bound.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any


def main(quick: bool = True) -> dict[str, Any]:
    from bench.common import emulated
    from loyalty.models.events import Channel
    from loyalty.points.service import PointsService, clear_rules_cache
    from loyalty.store import table as table_mod
    from tests.support.lambdas import LambdaContext, load_function
    from tests.support.points import order_event, sqs_record

    n = 200 if quick else 2000
    now = datetime.now(UTC)
    with emulated("ApplyPointsFunction"):
        clear_rules_cache()
        PointsService().rules()  # seed the default rules outside the measurement
        consumer = load_function("apply_points")
        ctx = LambdaContext()
        customers = max(1, n // 4)  # each customer buys 4 times: 1st earns, later ones find a balance
        bodies = [
            order_event(
                f"c_bench{i % customers:05d}",
                f"T-BENCH-{i:06d}",
                [("SKU-JACKET-M", 1, "99.50"), ("SKU-BEANIE", 1, "25.00")],
                channel=Channel.POS,
                occurred_at=now - timedelta(hours=1),
            ).model_dump_json()
            for i in range(n)
        ]
        table_mod.CAPACITY = table_mod.Capacity()
        started = time.perf_counter()
        for start in range(0, n, 10):
            batch = [sqs_record(b, "order.completed", i) for i, b in enumerate(bodies[start : start + 10])]
            assert consumer.handler({"Records": batch}, ctx) == {"batchItemFailures": []}
        elapsed = time.perf_counter() - started
        first = table_mod.CAPACITY
        table_mod.CAPACITY = table_mod.Capacity()
        dup_started = time.perf_counter()
        for start in range(0, min(n, 100), 10):
            batch = [sqs_record(b, "order.completed", i) for i, b in enumerate(bodies[start : start + 10])]
            consumer.handler({"Records": batch}, ctx)
        dup_elapsed = time.perf_counter() - dup_started
        dups = table_mod.CAPACITY
        table_mod.CAPACITY = None
        # redemptions: customers with 3 matured lots (124 points each) redeem 200 (two lots)
        svc = PointsService()
        spenders = n // 4
        for c in range(spenders):
            for k in range(3):
                svc.apply(
                    order_event(
                        f"c_spend{c:05d}",
                        f"T-SPEND-{c}-{k}",
                        [("SKU-JACKET-M", 1, "99.50"), ("SKU-BEANIE", 1, "25.00")],
                        channel=Channel.POS,
                        occurred_at=now - timedelta(days=20 + k),
                    )
                )
        table_mod.CAPACITY = table_mod.Capacity()
        redeem_started = time.perf_counter()
        for c in range(spenders):
            svc.redeem(f"c_spend{c:05d}", 200, f"bench-{c}", "pos", None)
        redeem_elapsed = time.perf_counter() - redeem_started
        redemptions = table_mod.CAPACITY
        table_mod.CAPACITY = None
        sample = svc.points("c_bench00000")
    return {
        "order_events": n,
        "accrual_events_per_s": round(n / elapsed, 1),
        "write_units_per_order_event": round(first.write_units / n, 2),
        "read_units_per_order_event": round(first.read_units / n, 2),
        "transactions": first.calls.get("transact_write_items", 0),
        "calls": first.calls,
        "items_per_ledger_transaction": "4 (dedupe + lot + earn entry + balance); 5 with an order bonus",
        "minimum_items": "3 (2-item transaction + dedupe record)",
        "duplicate_events_per_s": round(min(n, 100) / dup_elapsed, 1),
        "duplicate_write_units_reported": round(dups.write_units, 2),
        "duplicate_failed_writes": dups.failed_writes,
        "duplicate_calls": dups.calls,
        "redemptions_per_s": round(spenders / redeem_elapsed, 1),
        "write_units_per_redemption": round(redemptions.write_units / spenders, 2),
        "read_units_per_redemption": round(redemptions.read_units / spenders, 2),
        "items_per_redemption_transaction": "redemption + entry + balance + one per lot it spends (2 here)",
        "sample_customer": {k: sample[k] for k in ("pending", "available", "lifetime_earned", "tier")},
    }


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    sys.path[:0] = [
        str(Path(__file__).resolve().parents[1]),
        str(Path(__file__).resolve().parents[1] / "layers/loyalty"),
    ]
    print(json.dumps(main(quick="--full" not in sys.argv), indent=2))
