"""Local stack: start time, and latency of a signed webhook until its event is in the event log.

Each sample posts one unique POS sale over HTTP and polls the table until ``EVENT#<id>`` exists
(webhook -> API function -> ingest queue -> poller -> record_events -> table), then waits until
the whole pipeline (router, identity, points, stock, KPIs, notifications) is quiet again.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from devstack.stack import LocalStack, StackOptions
from devstack.template import ROOT


def _sale(uid: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "events" / "webhooks" / "pos_sale.json").read_text())
    doc.update(ticket_id=f"T-{uid}", loyalty_card=str(int(uid, 16))[-12:], pos_customer_no=f"C-{uid}")
    return doc


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def main(quick: bool = True) -> dict[str, Any]:
    samples = 8 if quick else 40
    with tempfile.TemporaryDirectory() as logs:
        t0 = time.perf_counter()
        stack = LocalStack(
            StackOptions(port=0, retry_delay_s=0, schedules=False, quiet=True, log_dir=Path(logs))
        )
        with stack:
            ready = time.perf_counter() - t0
            stack.wait_quiet(timeout=60)
            accept_ms, logged_ms, quiet_ms = [], [], []
            for _ in range(samples):
                started = time.perf_counter()
                resp = stack.post_webhook("pos", _sale(uuid.uuid4().hex[:12]))
                accept_ms.append((time.perf_counter() - started) * 1000)
                event_id = resp.json()["accepted"][0]["event_id"]
                key = {"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}}
                while "Item" not in stack.dynamodb.get_item(TableName=stack.table_name, Key=key):
                    time.sleep(0.005)
                logged_ms.append((time.perf_counter() - started) * 1000)
                stack.wait_quiet(timeout=60)
                quiet_ms.append((time.perf_counter() - started) * 1000)
            failed = sum(1 for o in stack.invoker.history if not o.ok)
    return {
        "functions": len(stack.plan.functions),
        "stack_ready_s": round(ready, 2),
        "samples": samples,
        "webhook_202_ms_p50": _percentile(accept_ms, 0.5),
        "webhook_to_event_log_ms_first": round(logged_ms[0], 1),
        "webhook_to_event_log_ms_p50": _percentile(logged_ms, 0.5),
        "webhook_to_event_log_ms_p95": _percentile(logged_ms, 0.95),
        "webhook_to_quiet_pipeline_ms_p50": _percentile(quiet_ms, 0.5),
        "webhook_to_quiet_pipeline_ms_mean": round(statistics.mean(quiet_ms), 1),
        "failed_invocations": failed,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
