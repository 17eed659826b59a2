"""A store purchase, through the real points ledger and the table's stream, ends as exactly one
"points earned" message on the customer's preferred CONSENTED channel, once the return window ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.filters import matches_any
from devstack.lambda_events import stream_record
from devstack.template import Resolver, load
from loyalty import aws
from loyalty.models.events import Channel
from loyalty.points.service import PointsService
from loyalty.settings import get_settings
from loyalty.store.table import Table
from tests.conftest import drain
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, load_function, sqs_event
from tests.support.points import order_event

FILTERS = [
    json.loads(f["Pattern"])
    for f in load()["Resources"]["FanoutNotificationsFunction"]["Properties"]["Events"]["TableChanges"][
        "Properties"
    ]["FilterCriteria"]["Filters"]
]
SALE = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)


class StreamTap:
    """Reads the table's stream (moto) from where it last stopped, in Lambda's record shape."""

    def __init__(self, table_name: str) -> None:
        self.streams = aws.client("dynamodbstreams")
        self.arn = aws.client("dynamodb").describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str] = {}

    def read(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            sid = shard["ShardId"]
            if sid not in self.iterators:
                self.iterators[sid] = self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            resp = self.streams.get_records(ShardIterator=self.iterators[sid], Limit=1000)
            self.iterators[sid] = resp["NextShardIterator"]
            out.extend(stream_record(r, self.arn, "eu-west-1", ttl_delete=False) for r in resp["Records"])
        return [r for r in out if matches_any(FILTERS, r)]  # what Lambda's filter hands the fan-out


def test_store_purchase_ends_as_one_points_earned_message_on_the_consented_channel(
    stack: Resolver, daytime: None, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer who prefers email but only consented to SMS
    table = Table()
    fx.seed_customer(table, "c_shopper", granted={"email": False, "sms": True}, preferred="email")
    tap = StreamTap(table.name)
    tap.read()  # the seeding itself (a welcome is not what this test is about)
    fanout = load_function("fanout_notifications").handler
    sqs = aws.client("sqs")
    # When she buys in store: the points are pending during the return window
    sale = order_event(
        "c_shopper", "T-STORE-1", [("SKU-JACKET", 1, "89.90")], channel=Channel.POS, occurred_at=SALE
    )
    PointsService(clock=lambda: SALE).apply(sale)
    assert fanout({"Records": tap.read()}, lambda_context) == {"batchItemFailures": []}
    assert drain(sqs, stack.refs["NotifySmsQueue"]) == []
    assert drain(sqs, stack.refs["NotifyEmailQueue"]) == []
    # When the return window is over and the release job makes them available
    report = PointsService(clock=lambda: SALE + timedelta(days=15)).release_pending()
    assert report.to_dict()["points"] > 0
    records = tap.read()
    assert fanout({"Records": records}, lambda_context) == {"batchItemFailures": []}
    assert fanout({"Records": records}, lambda_context) == {"batchItemFailures": []}  # a replay
    # Then exactly one "points earned" message was sent, by SMS, none by email
    bodies = {m["Body"] for m in drain(sqs, stack.refs["NotifySmsQueue"])}
    assert drain(sqs, stack.refs["NotifyEmailQueue"]) == []
    assert len(bodies) == 1
    monkeypatch.setenv("NOTIFY_CHANNEL", "sms")
    get_settings.cache_clear()
    sender = load_function("send_notification").handler
    for _ in range(2):  # SQS delivers at least once
        assert sender(sqs_event(sorted(bodies)), lambda_context) == {"batchItemFailures": []}
    (sent,) = table.query_all("CUST#c_shopper", sk_prefix="NOTIF#OUT#")
    assert (sent["intent"], sent["channel"], sent["address"]) == ("points_earned", "sms", "+34600000001")
    points = table.get("CUST#c_shopper", "PTS#BALANCE")
    assert points is not None
    assert str(points["available"]) in sent["content"]["text"]
