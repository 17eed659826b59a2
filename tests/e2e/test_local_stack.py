"""End to end on the local stack: signed webhooks over HTTP through queues, streams and functions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devstack.pollers import StreamPoller
from devstack.stack import LocalStack
from loyalty.routing.router import plan as route_plan
from loyalty.settings import Settings
from loyalty.store.table import deserialize
from tests.support.lambdas import load_event

pytestmark = pytest.mark.e2e

ROUTER = "RouteEventsFunction"
RECORDER = "RecordEventsFunction"


def pos_sale(uid: str) -> dict[str, Any]:
    """The sample POS ticket with this test's own ticket, card and customer number."""
    doc: dict[str, Any] = load_event("webhooks/pos_sale.json")
    digits = str(int(uid, 16))[-12:].rjust(12, "7")
    doc.update(ticket_id=f"T-{uid}", loyalty_card=digits, pos_customer_no=f"C-{uid}")
    return doc


def _event_item(stack: LocalStack, event_id: str) -> dict[str, Any] | None:
    """The event as logged, with the customer it is attributed to (issue 16, ``attr``: by its
    timeline entry's INSERT, which the router routes as the event's MODIFY with ``customer_id``)."""
    got = stack.dynamodb.get_item(
        TableName=stack.table_name, Key={"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}}
    )
    if "Item" not in got:
        return None
    item = deserialize(got["Item"])
    pages = stack.dynamodb.get_paginator("scan").paginate(
        TableName=stack.table_name,
        FilterExpression="entity = :tl AND event_id = :e AND stage = :a",
        ExpressionAttributeValues={
            ":tl": {"S": "timeline"},
            ":e": {"S": event_id},
            ":a": {"S": "attributed"},
        },
    )
    entries = [deserialize(i) for page in pages for i in page["Items"]]
    assert len(entries) + bool(item.get("customer_id")) <= 1, f"event {event_id} attributed more than once"
    return {**item, "customer_id": entries[0]["customer_id"]} if entries else item


def _queue_bodies(stack: LocalStack, url: str) -> list[str]:
    """Every message waiting in a queue nobody consumes (received, then made visible again)."""
    bodies, handles = [], []
    while True:
        got = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        messages = got.get("Messages", [])
        if not messages:
            break
        bodies += [m["Body"] for m in messages]
        handles += [m["ReceiptHandle"] for m in messages]
    for handle in handles:
        stack.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return bodies


def _reached(stack: LocalStack, url: str, event_id: str, stage: str) -> bool:
    """Whether the routed message of ``event_id`` at ``stage`` got to ``url``: handed to the
    queue's consumer if the template has one (its own tests judge what it does), else waiting."""
    consumers = [p for p in stack.sqs_pollers if p.queue_url == url]
    bodies = list(consumers[0].received_bodies) if consumers else _queue_bodies(stack, url)
    for body in bodies:
        message = json.loads(body)
        if message.get("stage") == stage and message.get("event", {}).get("event_id") == event_id:
            return True
    return False


def _router_settings(stack: LocalStack) -> Settings:
    assert stack.resolver is not None
    return Settings.model_validate(stack.plan.environment(stack.resolver, ROUTER))


def _assert_routed(stack: LocalStack, item: dict[str, Any]) -> list[str]:
    """Every queue the router's table sends this event to got it; returns those queue urls."""
    recorded = {k: v for k, v in item.items() if k != "customer_id"}
    expected = [(url, "recorded") for url, _ in route_plan(recorded, None, _router_settings(stack))]
    if item.get("customer_id"):
        expected += [(url, "attributed") for url, _ in route_plan(item, recorded, _router_settings(stack))]
    assert expected, "the router sends this event nowhere: the test would prove nothing"
    for url, stage in expected:
        assert _reached(stack, url, item["event_id"], stage), (
            f"{stage} stage of the event never reached {url}"
        )
    return [url for url, _ in expected]


def _invocations(stack: LocalStack, function: str, seq_or_id: str) -> list[Any]:
    return [o for o in stack.invoker.history if o.function == function and seq_or_id in o.ids]


def _insert_seq(stack: LocalStack, event_id: str) -> str:
    """The stream sequence number of the event item's INSERT."""
    arn = stack.resolver.attrs[("LoyaltyTable", "StreamArn")] if stack.resolver else ""
    streams = stack.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    while it:
        page = streams.get_records(ShardIterator=it, Limit=1000)
        for r in page["Records"]:
            if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"] == f"EVENT#{event_id}":
                return str(r["dynamodb"]["SequenceNumber"])
        it = page.get("NextShardIterator") if page["Records"] else None
    raise AssertionError(f"no INSERT of {event_id} in the stream")


def test_signed_webhook_reaches_the_event_log_and_the_router_queues(
    local_stack: LocalStack, uid: str
) -> None:
    # Given a signed POS sale of a new customer
    # When it is posted to the front door
    resp = local_stack.post_webhook("pos", pos_sale(uid))
    # Then it is acknowledged with its canonical event
    assert resp.status == 202, resp.body
    (accepted,) = resp.json()["accepted"]
    assert accepted["type"] == "order.completed"
    local_stack.wait_quiet()
    # And the event log holds it, and every concern queue the router serves received it
    item = _event_item(local_stack, accepted["event_id"])
    assert item is not None
    assert (item["channel"], item["type"]) == ("pos", "order.completed")
    reached = _assert_routed(local_stack, item)
    identity_url = local_stack.queue_url("IdentityQueue")
    assert identity_url in reached
    if any(p.queue_url == identity_url for p in local_stack.sqs_pollers):
        assert item.get("customer_id"), "identity consumes its queue, so the event must be attributed"


def test_bad_signature_and_unknown_routes_are_refused_at_the_front_door(
    local_stack: LocalStack, uid: str
) -> None:
    bad = local_stack.post_webhook("pos", pos_sale(uid), secret="whsec_" + "A" * 32)
    assert bad.status == 401
    assert bad.json()["error"]["code"] == "signature_invalid"
    missing = local_stack.request("GET", "/no/such/route")
    assert missing.status == 404
    assert missing.json()["error"]["code"] == "route_not_found"
    wrong_method = local_stack.request("GET", "/webhooks/pos")
    assert wrong_method.status == 405
    assert "POST" in wrong_method.headers["Allow"]


def test_protected_routes_refuse_anonymous_and_forged_callers_and_admit_real_ones(
    local_stack: LocalStack,
) -> None:
    staff = [r for r in local_stack.plan.routes if r.auth and r.method in {"GET", "ANY"}]
    if not staff:
        pytest.skip("no protected GET route in the template yet")
    path = staff[0].path.replace("{", "").replace("}", "")  # any value fills a parameter
    refused = local_stack.api("GET", path, staff=False)
    assert refused.status in {401, 403}
    wrong = local_stack.api("GET", path, staff=False, headers={"Authorization": "Bearer nope"})
    assert wrong.status in {401, 403}
    allowed = local_stack.api("GET", path)
    assert allowed.status not in {401, 403, 502}, allowed.body


def test_poisoned_message_ends_in_the_dlq_after_the_redrive_count(local_stack: LocalStack, uid: str) -> None:
    # Given a message record_events can never parse, put straight on the ingest queue
    url = local_stack.queue_url("IngestQueue")
    redrive = json.loads(
        local_stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    dlq_url = local_stack.sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[1])[
        "QueueUrl"
    ]
    message_id = local_stack.sqs.send_message(QueueUrl=url, MessageBody=f"poison {uid}")["MessageId"]
    # When the pipeline has done all it can
    local_stack.wait_quiet()
    # Then the function saw it exactly maxReceiveCount times and it now waits in the DLQ
    attempts = _invocations(local_stack, RECORDER, message_id)
    assert len(attempts) == int(redrive["maxReceiveCount"])
    assert all(o.failed_items >= 1 for o in attempts)
    found = []
    while True:
        got = local_stack.sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for m in got:
            if m["Body"] == f"poison {uid}":
                found.append(m)
                local_stack.sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
    assert len(found) == 1
    assert local_stack.queue_depth("IngestQueue") == 0


def test_failing_stream_batch_is_retried_then_delivered(local_stack: LocalStack, uid: str) -> None:
    # Given the router fails its next two invocations
    local_stack.wait_quiet()
    local_stack.invoker.inject_faults(ROUTER, 2)
    # When an event is recorded
    resp = local_stack.post_webhook("pos", pos_sale(uid))
    assert resp.status == 202
    event_id = resp.json()["accepted"][0]["event_id"]
    local_stack.wait_quiet()
    # Then the batch with its INSERT failed twice, was retried, and the event was routed
    seq = _insert_seq(local_stack, event_id)
    outcomes = [o.ok for o in _invocations(local_stack, ROUTER, seq)]
    assert outcomes == [False, False, True]
    item = _event_item(local_stack, event_id)
    assert item is not None
    _assert_routed(local_stack, item)


def test_stream_batch_failing_every_retry_goes_to_the_on_failure_queue(
    local_stack: LocalStack, uid: str
) -> None:
    # Given the router fails more often than its MaximumRetryAttempts allow
    source = next(s for s in local_stack.plan.streams if s.function == ROUTER)
    assert source.on_failure is not None
    failure_url = local_stack.queue_url(source.on_failure)
    local_stack.wait_quiet()
    local_stack.invoker.inject_faults(ROUTER, source.max_retries + 1)
    # When an event is recorded
    resp = local_stack.post_webhook("pos", pos_sale(uid))
    event_id = resp.json()["accepted"][0]["event_id"]
    local_stack.wait_quiet()
    # Then it was tried 1 + MaximumRetryAttempts times and a failure record names its sequence number
    seq = _insert_seq(local_stack, event_id)
    assert [o.ok for o in _invocations(local_stack, ROUTER, seq)] == [False] * (source.max_retries + 1)
    records = []
    while got := local_stack.sqs.receive_message(QueueUrl=failure_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for m in got:
            records.append(json.loads(m["Body"]))
            local_stack.sqs.delete_message(QueueUrl=failure_url, ReceiptHandle=m["ReceiptHandle"])
    mine = [r for r in records if r["DDBStreamBatchInfo"]["startSequenceNumber"] <= seq]
    mine = [r for r in mine if r["DDBStreamBatchInfo"]["endSequenceNumber"] >= seq]
    assert len(mine) == 1
    assert mine[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert mine[0]["requestContext"]["approximateInvokeCount"] == source.max_retries + 1


def test_ttl_sweep_deletes_expired_items_as_the_ttl_service(local_stack: LocalStack, uid: str) -> None:
    # Given an expired and a live item
    table = local_stack.table_name
    past, future = int(time.time()) - 60, int(time.time()) + 3600
    for sk, expires in (("OLD", past), ("NEW", future)):
        local_stack.dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"E2E#{uid}"},
                "sk": {"S": sk},
                "entity": {"S": "e2e_probe"},
                "expires_at": {"N": str(expires)},
            },
        )
    # When the sweeper runs
    assert local_stack.sweep_ttl() >= 1
    # Then only the expired one is gone, and its REMOVE record carries the TTL service identity
    got = local_stack.dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"E2E#{uid}"}},
    )["Items"]
    assert [i["sk"]["S"] for i in got] == ["NEW"]
    assert local_stack.resolver is not None
    arn = local_stack.resolver.attrs[("LoyaltyTable", "StreamArn")]
    probe = StreamPoller(
        local_stack.plan.streams[0],
        arn,
        local_stack.invoker,
        local_stack.client,
        "eu-west-1",
        0,
        None,
        local_stack.ttl_marks,
    )
    probe.open_shards()
    (iterator,) = probe.iterators.values()
    removes = []
    while True:
        page = probe.streams.get_records(ShardIterator=iterator, Limit=1000)
        removes += [
            probe.convert(r)
            for r in page["Records"]
            if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"]["pk"]["S"] == f"E2E#{uid}"
        ]
        if not page["Records"]:
            break
        iterator = page["NextShardIterator"]
    assert len(removes) == 1
    assert removes[0]["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_schedules_run_on_demand_through_the_control_endpoint(local_stack: LocalStack) -> None:
    if not local_stack.schedulers:
        pytest.skip("no schedule in the template yet")
    name = next(iter(local_stack.schedulers))
    resp = local_stack.request("POST", f"/__devstack/schedules/{name}")
    assert resp.status == 200, resp.body
    body = resp.json()
    assert body["ok"], body["error"]
    function = local_stack.schedulers[name].source.function
    assert any(o.function == function and o.trigger == "schedule" for o in local_stack.invoker.history)
    assert local_stack.request("POST", "/__devstack/schedules/NoSuchSchedule").status == 404
    local_stack.wait_quiet()
