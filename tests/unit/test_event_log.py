"""record_events (ingest queue -> event log) and route_events (stream -> concern queues)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.eventlog.store import EventLog, event_key, to_item
from loyalty.ingest.service import normalise_delivery
from loyalty.models.events import ChannelEvent
from loyalty.models.merges import CustomerMerged
from loyalty.store.table import Table
from tests.conftest import drain
from tests.support.lambdas import EVENTS, LambdaContext, load_event, load_function, sqs_event
from tests.support.streams import stream_event, stream_record

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _events(channel: str, sample: str) -> list[ChannelEvent]:
    body = json.dumps(load_event(f"webhooks/{sample}")).encode()
    return normalise_delivery(channel, body, NOW)


@pytest.fixture
def recorder(stack: Resolver) -> Any:
    return load_function("record_events")


@pytest.fixture
def router(stack: Resolver) -> Any:
    return load_function("route_events")


def test_events_are_recorded_once_whatever_the_redelivery(
    recorder: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    # Given the same canonical events delivered three times (webhook retry + SQS redelivery)
    events = _events("email", "email_events.json")
    bodies = [e.model_dump_json() for e in events]
    # When each delivery is processed
    for _ in range(3):
        result = recorder.handler(sqs_event(bodies), lambda_context)
        assert result == {"batchItemFailures": []}
    # Then the log holds each event once, queryable by day, identical to what was sent
    logged, cursor = EventLog().of_day(date(2025, 11, 19))
    assert cursor is None
    assert sorted(e.event_id for e in logged) == sorted(
        e.event_id for e in events if e.occurred_at.date() == date(2025, 11, 19)
    )
    for event in events:
        stored = Table().get(*event_key(event.event_id))
        assert stored is not None
        assert ChannelEvent.model_validate_json(stored["data"]) == event


def test_a_poisoned_message_fails_alone_and_the_rest_is_recorded(
    recorder: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    good = _events("pos", "pos_sale.json")[0]
    batch = sqs_event(["{not json", good.model_dump_json(), json.dumps({"event_id": "x"})])
    result = recorder.handler(batch, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}]}
    assert Table().get(*event_key(good.event_id)) is not None


def test_a_transient_table_failure_fails_the_record_for_retry(
    recorder: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    from loyalty import aws

    aws.client("dynamodb").delete_table(TableName=stack.refs["LoyaltyTable"])
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    good = _events("pos", "pos_sale.json")[0]
    # every record failed: the whole batch is handed back to SQS (Lambda retries it), nothing lost
    with pytest.raises(BatchProcessingError):
        recorder.handler(sqs_event([good.model_dump_json()]), lambda_context)


def test_attribution_happens_once(stack: Resolver) -> None:
    event = _events("pos", "pos_sale.json")[0]
    log = EventLog()
    assert log.record(event)
    assert log.attribute(event.event_id, "c_1")
    assert not log.attribute(event.event_id, "c_2")
    assert not log.attribute("missing", "c_1")
    assert log.get(event.event_id)["customer_id"] == "c_1"


def _item(event: ChannelEvent) -> dict[str, Any]:
    return to_item(event, 400)


def _queued(stack: Resolver, sqs: Any, logical: str) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain(sqs, stack.refs[logical])]


def test_recorded_stage_goes_to_identity_and_stock(
    router: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    sale = _item(_events("pos", "pos_sale.json")[0])
    assert router.handler(stream_event(stream_record(sale)), lambda_context) == {"batchItemFailures": []}
    identity = _queued(stack, sqs, "IdentityQueue")
    stock = _queued(stack, sqs, "StockQueue")
    assert [m["stage"] for m in identity] == ["recorded"]
    assert [m["event"]["event_id"] for m in stock] == [sale["event_id"]]
    assert _queued(stack, sqs, "PointsQueue") == []
    assert _queued(stack, sqs, "AnalyticsQueue") == []


def test_attributed_stage_goes_to_points_and_analytics(
    router: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    old = _item(_events("pos", "pos_sale.json")[0])
    new = {**old, "customer_id": "c_42"}
    router.handler(stream_event(stream_record(new, old)), lambda_context)
    points = _queued(stack, sqs, "PointsQueue")
    assert [(m["stage"], m["customer_id"]) for m in points] == [("attributed", "c_42")]
    assert len(_queued(stack, sqs, "AnalyticsQueue")) == 1
    assert _queued(stack, sqs, "IdentityQueue") == []
    # a later unrelated modification routes nothing
    router.handler(stream_event(stream_record({**new, "note": "x"}, new)), lambda_context)
    assert _queued(stack, sqs, "PointsQueue") == []


def test_engagement_without_points_is_not_sent_to_points(
    router: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    old = _item(_events("app", "app_product_viewed.json")[0])
    router.handler(stream_event(stream_record({**old, "customer_id": "c_1"}, old)), lambda_context)
    assert _queued(stack, sqs, "PointsQueue") == []
    assert len(_queued(stack, sqs, "AnalyticsQueue")) == 1


def test_merge_log_items_go_to_points(
    router: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    merged = CustomerMerged(kind="merge", merge_id="m1", survivor_id="c_a", absorbed_ids=["c_b"], at=NOW)
    item = {"pk": "MERGE#m1", "sk": "MERGE", "entity": "merge", "data": merged.model_dump_json()}
    router.handler(stream_event(stream_record(item)), lambda_context)
    (message,) = drain(sqs, stack.refs["PointsQueue"])
    assert CustomerMerged.model_validate_json(message["Body"]) == merged
    assert message["MessageAttributes"]["type"]["StringValue"] == "customer.merged"


def test_non_event_items_and_removals_are_ignored(
    router: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    sale = _item(_events("pos", "pos_sale.json")[0])
    other = {"pk": "CUST#c1", "sk": "PROFILE", "entity": "profile"}
    result = router.handler(
        stream_event(stream_record(other), stream_record(None, sale, seq=2)), lambda_context
    )
    assert result == {"batchItemFailures": []}
    for logical in ("IdentityQueue", "StockQueue", "PointsQueue", "AnalyticsQueue"):
        assert _queued(stack, sqs, logical) == []


def test_a_failed_send_reports_that_record_for_retry(
    router: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    sale = _item(_events("pos", "pos_sale.json")[0])
    view = _item(_events("app", "app_product_viewed.json")[0])
    sqs.delete_queue(QueueUrl=stack.refs["StockQueue"])
    result = router.handler(
        stream_event(stream_record(view, seq=1), stream_record(sale, seq=2)), lambda_context
    )
    # the sale needs the (now missing) stock queue; the product view does not
    assert result == {"batchItemFailures": [{"itemIdentifier": f"{2:021d}"}]}


def test_committed_sample_events_are_accepted_by_their_handlers(
    stack: Resolver, lambda_context: LambdaContext
) -> None:
    """The events/ files `sam local invoke -e` uses are valid inputs for their functions."""
    recorder = load_function("record_events")
    assert recorder.handler(load_event("sqs/record_events.json"), lambda_context) == {"batchItemFailures": []}
    router = load_function("route_events")
    assert router.handler(load_event("stream/route_events_insert.json"), lambda_context) == {
        "batchItemFailures": []
    }


def test_committed_api_samples_carry_valid_signatures(stack: Resolver) -> None:
    """Each sample is signed with the local secret at its own timestamp (re-sign to replay it)."""
    from devstack.provision import local_secrets
    from loyalty.ingest.signature import verify

    secrets = local_secrets()
    for path in sorted((EVENTS / "api").glob("webhook_*.json")):
        sample = json.loads(path.read_text())
        channel = sample["pathParameters"]["channel"]
        ts = int(sample["headers"]["webhook-timestamp"])
        verify(sample["headers"], sample["body"].encode(), secrets[channel], now=ts, tolerance_s=1)


# ---- scale: the write-sharded day index ----


def _listings(*days: date) -> list[dict[str, Any]]:
    """Every listing item of ``days``, all shards."""
    from loyalty.eventlog.store import EVDAY_SHARDS, listing_pk

    return [
        item
        for day in days
        for shard in range(EVDAY_SHARDS)
        for item in Table().query_all(listing_pk(day, shard))
    ]


def _pages(log: EventLog, day: date, limit: int) -> list[list[ChannelEvent]]:
    """``of_day`` read page after page to the end."""
    pages, cursor = [], None
    while True:
        page, cursor = log.of_day(day, limit=limit, cursor=cursor)
        pages.append(page)
        if cursor is None:
            return pages


def test_a_day_is_spread_over_shards_and_read_back_in_time_order(stack: Resolver) -> None:
    from datetime import UTC, datetime, timedelta

    from loyalty.eventlog.store import EVDAY_SHARDS, LISTING_ENTITY, entry_of, to_item
    from loyalty.settings import get_settings

    base = _events("pos", "pos_sale.json")[0]
    start = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
    events = [
        base.model_copy(update={"event_id": f"ev-{i:03d}", "occurred_at": start + timedelta(minutes=7 * i)})
        for i in range(40)
    ]
    log = EventLog()
    for event in reversed(events):
        assert log.record(event)
    # events recorded before the listings: indexed by gsi1, sharded and (older still) unsharded
    legacy = [
        base.model_copy(
            update={"event_id": f"ev-legacy-{n}", "occurred_at": datetime(2026, 11, 22, 1, n, tzinfo=UTC)}
        )
        for n in (1, 2)
    ]
    for event, gsi1pk in zip(legacy, ("EVDAY#2026-11-22", "EVDAY#2026-11-22#07"), strict=True):
        item = to_item(event, get_settings().event_retention_days)
        Table().put({**item, "gsi1pk": gsi1pk, "gsi1sk": entry_of(event)})
    assert all("gsi1pk" not in Table().get(*event_key(e.event_id)) for e in events)  # type: ignore[operator]
    listings = _listings(date(2026, 11, 21), date(2026, 11, 22))
    assert {i["entity"] for i in listings} == {LISTING_ENTITY}
    keys = {str(i["pk"]) for i in listings}
    assert len(keys) > 10
    assert all(0 <= int(k.rsplit("#", 1)[1]) < EVDAY_SHARDS for k in keys)

    on_22 = [e for e in [*events, *legacy] if e.occurred_at.date() == date(2026, 11, 22)]
    on_22.sort(key=lambda e: e.occurred_at)
    assert [e.event_id for e in log.events_on(date(2026, 11, 22))] == [e.event_id for e in on_22]

    window = (start + timedelta(minutes=30), start + timedelta(hours=3))
    in_order = sorted([*events, *legacy], key=lambda e: e.occurred_at)
    expected = [e.event_id for e in in_order if window[0] <= e.occurred_at < window[1]]
    assert list(log.ids_between(*window)) == expected

    pages = _pages(log, date(2026, 11, 22), limit=7)
    assert [e.event_id for p in pages for e in p] == [e.event_id for e in on_22]
    assert all(len(p) == 7 for p in pages[:-1])


def test_the_day_index_lists_every_event_once_whatever_the_redeliveries(
    recorder: Any, stack: Resolver, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random
    from datetime import timedelta

    from tests.support.races import race

    base = _events("pos", "pos_sale.json")[0]
    start = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
    events = [
        base.model_copy(update={"event_id": f"ev-{i:03d}", "occurred_at": start + timedelta(minutes=11 * i)})
        for i in range(24)
    ]
    bodies = [e.model_dump_json() for e in events]
    rng = random.Random(16)
    # Given a delivery whose listing write fails after its puts (the batch comes back whole)
    real_index = EventLog.index

    def failing_index(self: EventLog, stored: Any) -> None:
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(EventLog, "index", failing_index)
    with pytest.raises(RuntimeError):
        recorder.handler(sqs_event(bodies[:10]), lambda_context)
    monkeypatch.setattr(EventLog, "index", real_index)
    # When the events are delivered again and again, reordered, in batches of other companions,
    # and concurrently (several pollers)
    for _ in range(3):
        order = rng.sample(bodies, len(bodies))
        for at in range(0, len(order), 7):
            result = recorder.handler(sqs_event(order[at : at + 7]), lambda_context)
            assert result == {"batchItemFailures": []}
    log = EventLog()

    def pollers(i: int) -> bool:
        new = log.put(events[i])
        log.index(rng.sample(events, 5))
        return new

    assert race(6, pollers) == [False] * 6
    # Then each day lists each of its events exactly once, in time order, whole pages included
    for day in (date(2026, 11, 22), date(2026, 11, 23)):
        expected = [e.event_id for e in events if e.occurred_at.date() == day]
        assert [e.event_id for e in log.events_on(day)] == expected
        pages, cursor = [], None
        while True:
            page, cursor = log.of_day(day, limit=4, cursor=cursor)
            pages += [e.event_id for e in page]
            if cursor is None:
                break
        assert pages == expected
    window = (start, start + timedelta(hours=4))
    assert list(log.ids_between(*window)) == [e.event_id for e in events if e.occurred_at < window[1]]
