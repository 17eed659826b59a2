"""python -m loyalty.ops: replay the event log through the router, redrive dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devstack.template import Resolver
from loyalty.errors import TransientError
from loyalty.eventlog.store import EventLog, to_item
from loyalty.ingest.service import normalise_delivery
from loyalty.models.events import ChannelEvent
from loyalty.ops.__main__ import run
from loyalty.settings import get_settings
from tests.conftest import drain
from tests.support.lambdas import LambdaContext, load_event, load_function
from tests.support.streams import stream_event, stream_record

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONCERN_QUEUES = ("IdentityQueue", "PointsQueue", "StockQueue", "AnalyticsQueue")


def _sale(occurred: datetime) -> ChannelEvent:
    doc = load_event("webhooks/pos_sale.json")
    event = normalise_delivery("pos", json.dumps(doc).encode(), NOW)[0]
    ident = f"{event.event_id[:-12]}{int(occurred.timestamp()) % 10**12:012d}"
    return event.model_copy(update={"occurred_at": occurred, "event_id": ident})


def _messages(stack: Resolver, sqs: Any) -> dict[str, list[tuple[str, str, str | None]]]:
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for logical in CONCERN_QUEUES:
        bodies = [json.loads(m["Body"]) for m in drain(sqs, stack.refs[logical])]
        out[logical] = sorted((b["event"]["event_id"], b["stage"], b.get("customer_id")) for b in bodies)
    return out


def test_a_replay_sends_what_the_stream_sent(
    stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given two events in the log (one attributed to a customer) that the router routed from the stream
    log = EventLog()
    first, second = _sale(NOW - timedelta(hours=2)), _sale(NOW - timedelta(hours=1))
    router = load_function("route_events")
    for event in (first, second):
        assert log.record(event)
        router.handler(stream_event(stream_record(to_item(event, 400))), lambda_context)
    assert log.attribute(second.event_id, "c_42")
    recorded = to_item(second, 400)
    router.handler(stream_event(stream_record({**recorded, "customer_id": "c_42"}, recorded)), lambda_context)
    routed = _messages(stack, sqs)
    assert sum(map(len, routed.values())) >= 3
    # When the window is replayed
    start, end = (NOW - timedelta(hours=3)).isoformat(), NOW.isoformat()
    report = run(["--stage", "local", "replay", "--from", start, "--to", end])["replay"]
    # Then the same messages are sent again, and the report says what was sent
    assert _messages(stack, sqs) == routed
    assert report["events"] == 2
    assert sorted(report["event_ids"]) == sorted([first.event_id, second.event_id])
    assert report["messages"] == sum(map(len, routed.values()))


def test_a_replay_routes_again_an_event_attributed_by_its_timeline_entry(
    stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given a sale attributed by identity through its timeline entry (issue 16, ``attr``)
    from loyalty.identity.resolve import Resolver as IdentityResolver

    sale = _sale(NOW - timedelta(hours=1))
    assert EventLog().record(sale)
    cid = IdentityResolver().resolve(sale).customer_id
    assert cid
    drain(sqs, stack.refs["IdentityQueue"])
    # When it is replayed
    report = run(["--stage", "local", "replay", "--event-ids", sale.event_id])["replay"]
    # Then both stages are routed again: recorded (identity, stock) and attributed (points, analytics)
    got = _messages(stack, sqs)
    assert got["PointsQueue"] == [(sale.event_id, "attributed", cid)]
    assert got["AnalyticsQueue"] == [(sale.event_id, "attributed", cid)]
    assert [m[1] for m in got["IdentityQueue"]] == ["recorded"]
    assert report["messages"] == sum(map(len, got.values()))


def test_a_window_excludes_events_outside_it_and_ids_replay_exactly_those(stack: Resolver, sqs: Any) -> None:
    log = EventLog()
    before, inside, after = (_sale(NOW + timedelta(hours=h)) for h in (-30, 0, 30))
    for event in (before, inside, after):
        log.record(event)
    ids = list(log.ids_between(NOW - timedelta(hours=1), NOW + timedelta(hours=1)))
    assert ids == [inside.event_id]
    spanning = list(log.ids_between(NOW - timedelta(days=2), NOW + timedelta(days=2)))
    assert spanning == [before.event_id, inside.event_id, after.event_id]
    report = run(["--stage", "local", "replay", "--event-ids", after.event_id, "missing-id"])["replay"]
    assert (report["events"], report["missing"]) == (1, ["missing-id"])
    assert [m[0] for m in _messages(stack, sqs)["IdentityQueue"]] == [after.event_id]


def test_redrive_moves_every_dead_letter_back_to_its_queue(stack: Resolver, sqs: Any) -> None:
    dlq, source = stack.refs["PointsDLQ"], stack.refs["PointsQueue"]
    attrs = {"type": {"DataType": "String", "StringValue": "order.completed"}}
    sent = [
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m{i}", MessageAttributes=attrs)["MessageId"]
        for i in range(12)
    ]
    report = run(["--stage", "local", "redrive", "--all-dlqs"])["redrive"]
    points = next(r for r in report if r["queue"] == "loyalty-local-points-dlq")
    assert (points["target"], points["moved"], sorted(points["message_ids"])) == (
        "loyalty-local-points",
        12,
        sorted(sent),
    )
    assert all(r["moved"] == 0 for r in report if r is not points)
    back = drain(sqs, source)
    assert sorted(m["Body"] for m in back) == sorted(f"m{i}" for i in range(12))
    assert all(m["MessageAttributes"]["type"]["StringValue"] == "order.completed" for m in back)
    assert drain(sqs, dlq) == []


def test_redrive_of_one_queue_by_its_short_name(stack: Resolver, sqs: Any) -> None:
    sqs.send_message(QueueUrl=stack.refs["StockDLQ"], MessageBody="x")
    sqs.send_message(QueueUrl=stack.refs["PointsDLQ"], MessageBody="y")
    (report,) = run(["--stage", "local", "redrive", "stock"])["redrive"]
    assert (report["queue"], report["moved"]) == ("loyalty-local-stock-dlq", 1)
    assert [m["Body"] for m in drain(sqs, stack.refs["PointsDLQ"])] == ["y"]


def test_stream_failures_give_the_windows_to_replay(stack: Resolver, sqs: Any) -> None:
    body = {
        "requestContext": {"condition": "RecordAgeExceeded"},
        "DDBStreamBatchInfo": {
            "approximateArrivalOfFirstRecord": "2026-11-30T01:00:00Z",
            "approximateArrivalOfLastRecord": "2026-11-30T01:05:00Z",
            "batchSize": 7,
        },
    }
    sqs.send_message(QueueUrl=stack.refs["StreamFailureDLQ"], MessageBody=json.dumps(body))
    report = run(["--stage", "local", "redrive", "stream-failures", "--delete"])["stream_failures"]
    assert report["stream_windows"] == [
        {"from": "2026-11-30T01:00:00Z", "to": "2026-11-30T01:05:00Z", "records": 7}
    ]
    assert report["moved"] == 1
    assert drain(sqs, stack.refs["StreamFailureDLQ"]) == []


def test_a_denied_retry_backoff_is_not_swallowed(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalty import aws
    from loyalty.notify import sender

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ChangeMessageVisibility")

    monkeypatch.setattr(aws.client("sqs"), "change_message_visibility", denied)
    get_settings.cache_clear()
    with pytest.raises(TransientError, match="AccessDenied") as raised:  # the queue adapter's one error
        sender.backoff("email", "rh", 2)
    assert isinstance(raised.value.__cause__, ClientError)
