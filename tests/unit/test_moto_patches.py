"""The emulator patches keep DynamoDB's semantics: atomic requests, all-or-nothing transactions."""

from __future__ import annotations

import threading

import pytest

from devstack.template import Resolver
from loyalty import aws
from loyalty.errors import Conflict
from loyalty.store.table import Table, TransactionCancelled, tx_put_new, tx_update


def test_a_cancelled_transaction_leaves_items_and_stream_as_they_were(stack: Resolver) -> None:
    table = Table()
    table.put({"pk": "A", "sk": "1", "n": 1})
    table.put({"pk": "C", "sk": "1"})
    ddb = aws.client("dynamodb")
    stream_arn = ddb.describe_table(TableName=table.name)["Table"]["LatestStreamArn"]
    streams = aws.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]

    def records() -> int:
        it = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        return len(streams.get_records(ShardIterator=it["ShardIterator"])["Records"])

    before = records()
    with pytest.raises(TransactionCancelled) as err:
        table.transact(
            [
                tx_update("A", "1", "SET n = n + :one", values={":one": 1}),
                tx_put_new({"pk": "B", "sk": "1"}),
                tx_put_new({"pk": "C", "sk": "1"}),  # fails: exists
            ]
        )
    assert err.value.reasons == ["None", "None", "ConditionalCheckFailed"]
    assert table.get("A", "1") == {"pk": "A", "sk": "1", "n": 1}
    assert table.get("B", "1") is None
    assert records() == before
    table.transact(
        [tx_update("A", "1", "SET n = n + :one", values={":one": 1}), tx_put_new({"pk": "B", "sk": "1"})]
    )
    assert table.get("A", "1")["n"] == 2  # type: ignore[index]
    assert records() == before + 2


def test_conditional_writes_are_atomic_under_threads(stack: Resolver) -> None:
    table = Table()
    table.put({"pk": "STOCK", "sk": "X", "qty": 5})
    racers = 20
    barrier = threading.Barrier(racers)
    wins: list[int] = []

    def buy(i: int) -> None:
        barrier.wait()
        try:
            table.update("STOCK", "X", "SET qty = qty - :one", condition="qty >= :one", values={":one": 1})
            wins.append(i)
        except Conflict:
            pass

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 5
    assert table.get("STOCK", "X")["qty"] == 0  # type: ignore[index]
