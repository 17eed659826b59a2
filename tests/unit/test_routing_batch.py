"""route_events sends a stream batch with one SendMessageBatch per queue and ten messages (issue 16)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.template import Resolver
from loyalty import aws
from loyalty.eventlog.store import to_item
from loyalty.ingest.service import normalise_delivery
from loyalty.models.events import ChannelEvent
from tests.conftest import drain
from tests.support.lambdas import LambdaContext, load_event, load_function
from tests.support.streams import stream_event, stream_record

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _sales(n: int) -> list[ChannelEvent]:
    """``n`` distinct store sales (the sample sale under new ticket ids)."""
    sample = load_event("webhooks/pos_sale.json")
    out = []
    for i in range(n):
        at = (NOW + timedelta(seconds=i)).isoformat()
        doc = {**sample, "ticket_id": f"T-BATCH-{i:03d}", "issued_at": at}
        out.extend(normalise_delivery("pos", json.dumps(doc).encode(), NOW))
    return out


def _requests(calls: Counter[str]) -> Any:
    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    return count


def test_a_stream_batch_costs_one_request_per_queue_and_ten_messages(
    stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given 25 recorded sales and their 25 attributions in one stream batch
    sales = [to_item(e, 400) for e in _sales(25)]
    records = [stream_record(item, seq=i + 1) for i, item in enumerate(sales)]
    records += [
        stream_record({**item, "customer_id": f"c_{i}"}, item, seq=100 + i) for i, item in enumerate(sales)
    ]
    calls: Counter[str] = Counter()
    hook = _requests(calls)
    events = aws.client("sqs").meta.events
    events.register("after-call.sqs", hook)
    try:
        # When the router takes the batch
        result = load_function("route_events").handler(stream_event(*records), lambda_context)
    finally:
        events.unregister("after-call.sqs", hook)
    # Then every message is queued, 3 requests per queue (10 + 10 + 5), no single sends
    assert result == {"batchItemFailures": []}
    assert calls == Counter({"SendMessageBatch": 4 * 3})
    for logical, stage in (
        ("IdentityQueue", "recorded"),
        ("StockQueue", "recorded"),
        ("PointsQueue", "attributed"),
        ("AnalyticsQueue", "attributed"),
    ):
        bodies = [json.loads(m["Body"]) for m in drain(sqs, stack.refs[logical])]
        assert sorted(b["event"]["event_id"] for b in bodies) == sorted(e["pk"][6:] for e in sales)
        assert {b["stage"] for b in bodies} == {stage}


def test_only_the_records_whose_queue_refused_are_reported(
    stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given a batch where a sale (stock queue) sits between attributions (points and analytics)
    sales = [to_item(e, 400) for e in _sales(3)]
    records = [
        stream_record({**sales[0], "customer_id": "c_0"}, sales[0], seq=1),
        stream_record(sales[1], seq=2),
        stream_record({**sales[2], "customer_id": "c_2"}, sales[2], seq=3),
        stream_record({"pk": "EVENT#bad", "sk": "EVENT", "entity": "event", "data": "{"}, seq=4),
    ]
    # and the stock queue gone
    sqs.delete_queue(QueueUrl=stack.refs["StockQueue"])
    result = load_function("route_events").handler(stream_event(*records), lambda_context)
    # Then the sale and the malformed record are reported; the attributions went through
    assert result == {"batchItemFailures": [{"itemIdentifier": f"{2:021d}"}, {"itemIdentifier": f"{4:021d}"}]}
    assert len(drain(sqs, stack.refs["PointsQueue"])) == 2
    assert len(drain(sqs, stack.refs["IdentityQueue"])) == 1
