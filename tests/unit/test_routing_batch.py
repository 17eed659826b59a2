"""route_events sends a stream batch with one SendMessageBatch per queue and ten messages, routed
events bundled ten to a message for identity, stock, points and analytics; their consumers take
bundles (issue 16)."""

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
from loyalty.routing.router import BUNDLE_TYPE, RoutedBundle
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
    # Then every queue gets one request, carrying 3 bundles of routed events (10 + 10 + 5):
    # identity and stock the recorded stage, points and analytics the attributed one
    assert result == {"batchItemFailures": []}
    assert calls == Counter({"SendMessageBatch": 1 + 1 + 1 + 1})
    ids = sorted(e["pk"].removeprefix("EVENT#") for e in sales)
    for logical, stage in [
        ("IdentityQueue", "recorded"),
        ("StockQueue", "recorded"),
        ("PointsQueue", "attributed"),
        ("AnalyticsQueue", "attributed"),
    ]:
        messages = drain(sqs, stack.refs[logical])
        assert {m["MessageAttributes"]["type"]["StringValue"] for m in messages} == {BUNDLE_TYPE}
        bundles = [RoutedBundle.model_validate_json(m["Body"]) for m in messages]
        assert sorted(len(b.events) for b in bundles) == [5, 10, 10]
        routed = [r for b in bundles for r in b.events]
        assert sorted(r.event.event_id for r in routed) == ids
        assert {(r.stage, r.customer_id is not None) for r in routed} == {(stage, stage == "attributed")}


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
    (bundle,) = drain(sqs, stack.refs["PointsQueue"])
    assert len(RoutedBundle.model_validate_json(bundle["Body"]).events) == 2
    assert len(drain(sqs, stack.refs["IdentityQueue"])) == 1


def test_the_points_consumer_applies_every_event_of_a_bundle_once(stack: Resolver) -> None:
    from loyalty.points.service import PointsService, clear_rules_cache
    from tests.support.points import order_event, sqs_record

    clear_rules_cache()
    # Given a bundle of two orders, the first one again, and an order never attributed
    first = order_event("c_b1", "W-B1", [("SKU-A", 1, "42")], occurred_at=NOW)
    second = order_event("c_b2", "W-B2", [("SKU-A", 1, "10")], occurred_at=NOW)
    orphan = order_event("c_b3", "W-B3", [("SKU-A", 1, "5")], occurred_at=NOW).model_copy(
        update={"customer_id": None}
    )
    good = RoutedBundle(events=[first, second, first]).model_dump_json()
    bad = RoutedBundle(events=[orphan, second]).model_dump_json()
    consumer = load_function("apply_points")
    # When it is delivered twice, next to a bundle with an orphan
    records = [
        sqs_record(good, BUNDLE_TYPE, 0),
        sqs_record(good, BUNDLE_TYPE, 1),
        sqs_record(bad, BUNDLE_TYPE, 2),
    ]
    result = consumer.handler({"Records": records}, LambdaContext())
    # Then each order earned once, and only the bundle with the orphan is handed back
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert PointsService().points("c_b1")["pending"] == 42
    assert PointsService().points("c_b2")["pending"] == 10
    clear_rules_cache()


def test_the_kpi_consumer_counts_every_event_of_a_bundle_once(
    stack: Resolver, lambda_context: LambdaContext
) -> None:
    from loyalty.analytics.kpis import Kpis
    from loyalty.routing.router import RoutedEvent
    from tests.support.points import sqs_record

    sales = [RoutedEvent(stage="attributed", customer_id=f"c_k{i}", event=e) for i, e in enumerate(_sales(3))]
    bundle = RoutedBundle(events=sales[:2]).model_dump_json()
    records = [
        sqs_record(bundle, BUNDLE_TYPE, 0),
        sqs_record(sales[2].model_dump_json(), "order.completed", 1),
        sqs_record(bundle, BUNDLE_TYPE, 2),
        sqs_record("{nope", BUNDLE_TYPE, 3),
    ]
    result = load_function("aggregate_kpis").handler({"Records": records}, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    pos = Kpis().daily(sales[0].event.occurred_at.date())["channels"]["pos"]
    assert pos["orders"] == 3
    assert pos["active_customers"] == 3
