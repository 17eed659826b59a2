"""Signed webhooks through ingest (verify, normalise, queue) and the event recorder, on moto.

Reports events/s for each stage and DynamoDB write request units per recorded event (summed from
``ReturnConsumedCapacity``), including a second delivery of every webhook (duplicates cost a
failed conditional put, which DynamoDB still bills as one write unit).
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any


def main(quick: bool = True) -> dict[str, Any]:
    from bench.common import emulated
    from loyalty import aws
    from loyalty.store import table as table_mod
    from tests.support.lambdas import LambdaContext, load_event, load_function, signed_webhook

    n = 150 if quick else 3000
    with emulated("IngestWebhookFunction", "RecordEventsFunction") as resolver:
        ingest = load_function("ingest_webhook")
        recorder = load_function("record_events")
        ctx = LambdaContext()
        base = load_event("webhooks/pos_sale.json")
        requests = []
        for i in range(n):
            doc = copy.deepcopy(base)
            doc["ticket_id"] = f"T-BENCH-{i:06d}"
            requests.append(signed_webhook("pos", doc))
        started = time.perf_counter()
        for req in requests:
            assert ingest.handler(req, ctx)["statusCode"] == 202
        ingest_s = time.perf_counter() - started

        sqs = aws.client("sqs")
        queue = resolver.refs["IngestQueue"]
        bodies: list[str] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                break
            bodies.extend(m["Body"] for m in msgs)
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
            )
        assert len(bodies) == n
        from tests.support.lambdas import sqs_event

        table_mod.CAPACITY = capacity = table_mod.Capacity()
        started = time.perf_counter()
        for i in range(0, n, 10):
            result = recorder.handler(sqs_event(bodies[i : i + 10]), ctx)
            assert result == {"batchItemFailures": []}
        record_s = time.perf_counter() - started
        first_wcu = capacity.write_units
        for i in range(0, n, 10):  # every message again: the redelivery case
            recorder.handler(sqs_event(bodies[i : i + 10]), ctx)
        table_mod.CAPACITY = None
        items = aws.client("dynamodb").scan(  # one event item per event, however often delivered
            TableName=resolver.refs["LoyaltyTable"],
            Select="COUNT",
            FilterExpression="entity = :event",
            ExpressionAttributeValues={":event": {"S": "event"}},
        )["Count"]
        assert items == n, items
    return {
        "webhooks": n,
        "ingest_events_per_s": round(n / ingest_s, 1),
        "record_events_per_s": round(n / record_s, 1),
        "write_units_per_recorded_event": round(first_wcu / n, 2),
        "failed_conditional_writes_per_duplicate_delivery": round(capacity.failed_writes / n, 2),
        "billed_write_units_per_duplicate_delivery": round(
            (capacity.write_units - first_wcu + capacity.failed_writes) / n, 2
        ),
        "note": "moto in process on one core; AWS figures differ, request units do not",
        "body_bytes": len(json.dumps(base)),
    }


if __name__ == "__main__":
    print(json.dumps(main(quick=False), indent=2))
