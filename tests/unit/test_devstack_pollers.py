"""Event source mapping semantics of the pollers, against a scripted function (no emulator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from devstack.plan import SqsSource, StreamSource
from devstack.pollers import SqsPoller, StreamPoller, TtlMarks
from devstack.runtime import Console, Outcome
from tests.support.streams import stream_record

STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/x"
SOURCE = StreamSource(
    function="Fn",
    event="E",
    table="T",
    starting_position="TRIM_HORIZON",
    batch_size=100,
    window_s=0,
    bisect=False,
    max_retries=2,
    max_record_age_s=-1,
    report_failures=True,
    on_failure="FailureQueue",
)


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.visibility: list[tuple[str, int]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.sent.append(json.loads(MessageBody))

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.visibility.append((ReceiptHandle, VisibilityTimeout))


class ScriptedInvoker:
    """Answers each invocation with ``script(records)``: a result dict, or an exception (error)."""

    def __init__(self, script: Callable[[list[dict[str, Any]]], dict[str, Any] | Exception | None]) -> None:
        self.script = script
        self.batches: list[list[str]] = []
        self.console = Console(quiet=True)

    def function_arn(self, function: str) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{function}"

    def invoke(self, function: str, event: Any, **kw: Any) -> Outcome:
        records = event["Records"]
        self.batches.append(kw["ids"])
        answer = self.script(records)
        if isinstance(answer, Exception):
            error = {"errorType": type(answer).__name__, "errorMessage": str(answer), "stackTrace": []}
            return Outcome(function, "t", "", len(records), 1.0, ok=False, error=error)
        return Outcome(function, "t", "", len(records), 1.0, ok=True, result=answer)


def _records(n: int) -> list[dict[str, Any]]:
    return [stream_record({"pk": f"P{i}", "sk": "S", "entity": "event"}, seq=i) for i in range(1, n + 1)]


def _seq(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _poller(invoker: ScriptedInvoker, source: StreamSource = SOURCE) -> tuple[StreamPoller, FakeSqs]:
    sqs = FakeSqs()
    poller = StreamPoller(
        source,
        STREAM_ARN,
        invoker,  # type: ignore[arg-type]  # a scripted stand-in for the runtime's Invoker
        lambda _: sqs,
        "eu-west-1",
        0,
        "http://q/failures",
        TtlMarks(),
    )
    return poller, sqs


def test_partial_failure_retries_from_the_first_failed_sequence_number() -> None:
    records = _records(5)
    failed_once: set[str] = set()

    def script(batch: list[dict[str, Any]]) -> dict[str, Any]:
        if _seq(records[2]) in {_seq(r) for r in batch} and not failed_once:
            failed_once.add("x")
            return {
                "batchItemFailures": [
                    {"itemIdentifier": _seq(records[3])},
                    {"itemIdentifier": _seq(records[2])},
                ]
            }
        return {"batchItemFailures": []}

    invoker = ScriptedInvoker(script)
    poller, sqs = _poller(invoker)
    poller._deliver_batch("shard", records)
    assert invoker.batches == [[_seq(r) for r in records], [_seq(r) for r in records[2:]]]
    assert poller.delivered == 5
    assert not sqs.sent


def test_errors_bisect_the_batch_then_give_up_on_the_bad_record_only() -> None:
    records = _records(4)
    bad = _seq(records[1])

    def script(batch: list[dict[str, Any]]) -> Exception | None:
        return RuntimeError("bad record") if bad in {_seq(r) for r in batch} else None

    invoker = ScriptedInvoker(script)
    poller, sqs = _poller(invoker, replace(SOURCE, bisect=True))
    poller._deliver_batch("shard", records)
    seqs = [_seq(r) for r in records]
    assert invoker.batches == [seqs, seqs[:2], seqs[:1], seqs[1:2], seqs[1:2], seqs[1:2], seqs[2:]]
    (failure,) = sqs.sent
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (bad, bad, 1)
    assert failure["requestContext"]["approximateInvokeCount"] == 3  # 1 + MaximumRetryAttempts
    assert poller.delivered == 3
    assert poller.sent_to_failure == 1


def test_without_report_batch_item_failures_a_returned_list_is_ignored() -> None:
    records = _records(2)
    invoker = ScriptedInvoker(lambda batch: {"batchItemFailures": [{"itemIdentifier": _seq(batch[0])}]})
    poller, _ = _poller(invoker, replace(SOURCE, report_failures=False))
    poller._deliver_batch("shard", records)
    assert len(invoker.batches) == 1
    assert poller.delivered == 2


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    records = _records(2)
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "nope"}]}, {}])
    invoker = ScriptedInvoker(lambda batch: next(answers))
    poller, _ = _poller(invoker)
    poller._deliver_batch("shard", records)
    assert invoker.batches == [[_seq(r) for r in records]] * 2


def test_ttl_marks_are_seen_once_by_each_consumer() -> None:
    marks = TtlMarks()
    keys = {"pk": {"S": "a"}, "sk": {"S": "b"}}
    marks.add(keys)
    router_seen: set[int] = set()
    fanout_seen: set[int] = set()
    assert marks.consume(keys, router_seen)
    assert marks.consume(keys, fanout_seen)
    assert not marks.consume(keys, router_seen)  # a later (user) delete of the same key


def _message(i: int) -> dict[str, Any]:
    return {
        "MessageId": f"m{i}",
        "ReceiptHandle": f"rh{i}",
        "Body": json.dumps({"n": i}),
        "Attributes": {"ApproximateReceiveCount": "1"},
    }


def _sqs_poller(
    invoker: ScriptedInvoker, report: bool = True, filters: tuple[str, ...] = ()
) -> tuple[SqsPoller, FakeSqs]:
    sqs = FakeSqs()
    source = SqsSource("Fn", "E", "Q", batch_size=10, window_s=0, report_failures=report, filters=filters)
    poller = SqsPoller(
        source,
        "http://q",
        "arn:aws:sqs:eu-west-1:1:q",
        invoker,  # type: ignore[arg-type]  # a scripted stand-in for the runtime's Invoker
        lambda _: sqs,
        "eu-west-1",
        0,
    )
    return poller, sqs


def test_sqs_reported_failures_are_retried_soon_and_the_rest_deleted() -> None:
    invoker = ScriptedInvoker(lambda batch: {"batchItemFailures": [{"itemIdentifier": "m2"}]})
    poller, sqs = _sqs_poller(invoker)
    poller._deliver([_message(i) for i in range(1, 4)])
    assert sqs.deleted == ["rh1", "rh3"]
    assert sqs.visibility == [("rh2", 0)]


def test_sqs_an_error_fails_the_whole_batch() -> None:
    invoker = ScriptedInvoker(lambda batch: RuntimeError("down"))
    poller, sqs = _sqs_poller(invoker)
    poller._deliver([_message(i) for i in range(1, 3)])
    assert sqs.deleted == []
    assert [h for h, _ in sqs.visibility] == ["rh1", "rh2"]


def test_sqs_filters_drop_and_delete_what_does_not_match() -> None:
    invoker = ScriptedInvoker(lambda batch: {})
    poller, sqs = _sqs_poller(invoker, filters=('{"body": {"n": [2]}}',))
    poller._deliver([_message(i) for i in range(1, 4)])
    assert invoker.batches == [["m2"]]
    assert sorted(sqs.deleted) == ["rh1", "rh2", "rh3"]
