"""Event source mappings, run locally: SQS pollers, DynamoDB stream pollers, TTL, schedules.

Each is a thread talking to the emulator over HTTP like Lambda's pollers talk to AWS.
Local differences from AWS (documented in docs/local-stack.md): failed SQS messages become
visible again after ``retry_delay_s`` (not the queue's VisibilityTimeout), stream retries wait
``retry_delay_s``, batching windows are not waited for, and TTL is a periodic sweep.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devstack.filters import matches_any
from devstack.lambda_events import (
    scheduled_event,
    sqs_event,
    sqs_filter_view,
    stream_failure_record,
    stream_record,
)
from devstack.plan import ScheduleSource, SqsSource, StreamSource
from devstack.runtime import Invoker, Outcome
from devstack.schedule import parse_expression

ClientFactory = Callable[[str], Any]


class Loop(threading.Thread):
    """A daemon thread with a stop event; ``polls`` counts completed idle polls (for quiet checks)."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.idle_polls = 0
        self.busy = False
        self.errors = 0
        self.last_error = ""
        self.report: Callable[[str], None] = lambda _line: None

    def stop(self) -> None:
        self.stopping.set()

    def _failed(self, err: Exception) -> None:
        """Keep going (a poller outlives any error), say so once per distinct error, back off."""
        self.errors += 1
        message = f"{type(err).__name__}: {err}"
        if message != self.last_error:
            self.report(f"          {self.name}: {message} (retrying)")
        self.last_error = message
        self.stopping.wait(0.5)


class SqsPoller(Loop):
    """Deliver a queue's messages to its function in batches, with Lambda's failure semantics."""

    def __init__(
        self,
        source: SqsSource,
        queue_url: str,
        queue_arn: str,
        invoker: Invoker,
        clients: ClientFactory,
        region: str,
        retry_delay_s: float,
    ) -> None:
        super().__init__(f"sqs:{source.function}:{source.event}")
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.invoker = invoker
        self.sqs = clients("sqs")
        self.region = region
        self.retry_delay_s = retry_delay_s
        self.patterns = [json.loads(p) for p in source.filters]
        # bodies handed to the function, and those it processed (for tests and the demo)
        self.received_bodies: deque[str] = deque(maxlen=5000)
        self.delivered_bodies: deque[str] = deque(maxlen=5000)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once(wait_s=1)
            except Exception as err:
                self._failed(err)

    def _receive(self, wait_s: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.source.batch_size:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(messages)),
                WaitTimeSeconds=0 if messages else wait_s,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        return messages

    def poll_once(self, wait_s: int = 0) -> int:
        """Receive one batch and deliver it; the number of messages received."""
        messages = self._receive(wait_s)
        if not messages:
            self.idle_polls += 1
            return 0
        self.busy = True
        try:
            self._deliver(messages)
        finally:
            self.busy = False
        return len(messages)

    def _filtered(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records the source's filter keeps; Lambda deletes the messages it drops."""
        if not self.patterns:
            return records
        kept = [r for r in records if matches_any(self.patterns, sqs_filter_view(r))]
        self._delete_messages([r["receiptHandle"] for r in records if r not in kept])
        return kept

    def _failed_ids(self, outcome: Outcome, records: list[dict[str, Any]]) -> set[str]:
        """Message ids the invocation failed: all of them on an error, else the reported ones."""
        known = {r["messageId"] for r in records}
        if not outcome.ok:
            return known
        if not (self.source.report_failures and isinstance(outcome.result, dict)):
            return set()
        reported = {str(f.get("itemIdentifier", "")) for f in outcome.result.get("batchItemFailures") or []}
        # an empty or unknown identifier fails the whole batch, as in Lambda
        return known if reported - known else reported

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        records = self._filtered(sqs_event(messages, self.queue_arn, self.region)["Records"])
        if not records:
            return
        event = {"Records": records}
        self.received_bodies.extend(r["body"] for r in records)
        outcome = self.invoker.invoke(
            self.source.function,
            event,
            trigger="sqs",
            source=self.queue_url.rsplit("/", 1)[-1],
            items=len(records),
            ids=[r["messageId"] for r in records],
        )
        failed = self._failed_ids(outcome, records)
        self._delete_messages([r["receiptHandle"] for r in records if r["messageId"] not in failed])
        self.delivered_bodies.extend(r["body"] for r in records if r["messageId"] not in failed)
        for r in records:
            if r["messageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=r["receiptHandle"],
                    VisibilityTimeout=int(self.retry_delay_s),
                )

    def _delete_messages(self, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            chunk = handles[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)],
            )


class TtlMarks:
    """Keys the TTL sweeper deleted: their REMOVE records carry the TTL service identity.

    Each deletion gets a mark id; every stream poller consumes a mark once (its own ``seen``
    set), so several consumers of one stream all see the TTL identity, and a later user delete
    of the same key (after the item was created again) does not.
    """

    def __init__(self) -> None:
        self._marks: dict[str, int] = {}
        self._next = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(keys: dict[str, Any]) -> str:
        return json.dumps(keys, sort_keys=True)

    def add(self, keys: dict[str, Any]) -> None:
        with self._lock:
            self._next += 1
            self._marks[self.key(keys)] = self._next

    def discard(self, keys: dict[str, Any]) -> None:
        with self._lock:
            self._marks.pop(self.key(keys), None)

    def consume(self, keys: dict[str, Any], seen: set[int]) -> bool:
        """Whether a REMOVE of ``keys`` is a TTL delete this consumer has not seen yet."""
        with self._lock:
            mark = self._marks.get(self.key(keys))
        if mark is None or mark in seen:
            return False
        seen.add(mark)
        return True


class StreamPoller(Loop):
    """Deliver a table stream's records to a function: in order per shard, with retries."""

    def __init__(
        self,
        source: StreamSource,
        stream_arn: str,
        invoker: Invoker,
        clients: ClientFactory,
        region: str,
        retry_delay_s: float,
        on_failure_url: str | None,
        ttl_marks: TtlMarks,
        poll_interval_s: float = 0.2,
    ) -> None:
        super().__init__(f"stream:{source.function}:{source.event}")
        self.source = source
        self.stream_arn = stream_arn
        self.invoker = invoker
        self.streams = clients("dynamodbstreams")
        self.sqs = clients("sqs")
        self.region = region
        self.retry_delay_s = retry_delay_s
        self.on_failure_url = on_failure_url
        self.ttl_marks = ttl_marks
        self.poll_interval_s = poll_interval_s
        self.patterns = [json.loads(p) for p in source.filters]
        self.iterators: dict[str, str] = {}
        self._seen_marks: set[int] = set()
        self.delivered = 0
        self.sent_to_failure = 0
        self.delivered_keys: set[str] = set()  # keys of records a successful invocation took
        # operations (issue 13): a consumer that is down (nothing read, records age in the stream),
        # and the clock of the MaximumRecordAgeInSeconds check (tests move it, never sleep)
        self.paused = threading.Event()
        self.pause_seen = threading.Event()  # set once the loop has stopped reading for the pause
        self.clock: Callable[[], float] = time.time

    def open_shards(self) -> None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self.iterators:
                self.iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard["ShardId"],
                    ShardIteratorType=self.source.starting_position,
                )["ShardIterator"]

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.paused.is_set():
                self.idle_polls += 1
                self.pause_seen.set()
                self.stopping.wait(self.poll_interval_s)
                continue
            try:
                if not self.poll_once():
                    self.stopping.wait(self.poll_interval_s)
            except Exception as err:
                self._failed(err)

    def poll_once(self) -> int:
        """Read every shard once and deliver what arrived; the number of records read."""
        self.open_shards()
        total = 0
        for shard_id in list(self.iterators):
            resp = self.streams.get_records(ShardIterator=self.iterators[shard_id], Limit=1000)
            raw = resp.get("Records", [])
            if raw:
                self.busy = True
                try:
                    records = [self.convert(r) for r in raw]
                    self._deliver_all(shard_id, records)
                finally:
                    self.busy = False
            # only move on once delivered: a crash above re-reads the same records
            self.iterators[shard_id] = resp["NextShardIterator"]
            total += len(raw)
        if not total:
            self.idle_polls += 1
        return total

    def convert(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A ``get_records`` record in Lambda's shape, TTL deletes marked."""
        ttl = raw["eventName"] == "REMOVE" and self.ttl_marks.consume(
            raw["dynamodb"]["Keys"], self._seen_marks
        )
        return stream_record(raw, self.stream_arn, self.region, ttl_delete=ttl)

    def _deliver_all(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        kept = [r for r in records if matches_any(self.patterns, r)]
        for start in range(0, len(kept), self.source.batch_size):
            self._deliver_batch(shard_id, kept[start : start + self.source.batch_size])

    def _deliver_batch(self, shard_id: str, batch: list[dict[str, Any]]) -> None:
        """Invoke until the batch is processed; retries, bisection and on-failure as in Lambda."""
        pending: list[tuple[list[dict[str, Any]], int]] = [(batch, 0)]
        while pending and not self.stopping.is_set():
            records, retries = pending.pop(0)
            if self._too_old(records):
                self._give_up(shard_id, records, retries, "RecordAgeExceeded", None)
                continue
            outcome = self.invoker.invoke(
                self.source.function,
                {"Records": records},
                trigger="stream",
                source=self.source.table,
                items=len(records),
                ids=[r["dynamodb"]["SequenceNumber"] for r in records],
            )
            rest: list[dict[str, Any]] | None = None
            if outcome.ok:
                rest = self._rest_after_partial(records, outcome.result)
                done = records if rest is None else records[: len(records) - len(rest)]
                self.delivered += len(done)
                self.delivered_keys.update(TtlMarks.key(r["dynamodb"]["Keys"]) for r in done)
                if rest is None:
                    continue
                halves = [rest]
            elif self.source.bisect and len(records) > 1:
                middle = len(records) // 2  # splitting does not count as a retry (Lambda's rule)
                pending[:0] = [(records[:middle], retries), (records[middle:], retries)]
                continue
            else:
                halves = [records]
            failed = halves[0]
            if 0 <= self.source.max_retries <= retries:
                error = (outcome.error or {}).get("errorType") if not outcome.ok else "PartialBatchFailure"
                self._give_up(shard_id, failed, retries + 1, "RetryAttemptsExhausted", error)
                continue
            self.stopping.wait(self.retry_delay_s)
            pending.insert(0, (failed, retries + 1))

    def _rest_after_partial(self, records: list[dict[str, Any]], result: Any) -> list[dict[str, Any]] | None:
        """Records to retry (from the first reported failure on), or None when all succeeded."""
        if not self.source.report_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures") or []
        if not failures:
            return None
        seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
        reported = [str(f.get("itemIdentifier", "")) for f in failures]
        if any(s not in seqs for s in reported):
            return records  # an invalid response fails the whole batch
        first = min(seqs.index(s) for s in reported)
        return records[first:]

    def _too_old(self, records: list[dict[str, Any]]) -> bool:
        if self.source.max_record_age_s < 0:
            return False
        oldest = float(records[0]["dynamodb"]["ApproximateCreationDateTime"])
        return self.clock() - oldest > self.source.max_record_age_s

    def _give_up(
        self, shard_id: str, records: list[dict[str, Any]], attempts: int, condition: str, error: str | None
    ) -> None:
        self.sent_to_failure += len(records)
        if self.on_failure_url is None:
            return
        body = stream_failure_record(
            records=records,
            function_arn=self.invoker.function_arn(self.source.function),
            stream_arn=self.stream_arn,
            shard_id=shard_id,
            condition=condition,
            attempts=attempts,
            error=error,
        )
        self.sqs.send_message(QueueUrl=self.on_failure_url, MessageBody=json.dumps(body))
        self.invoker.console.line(
            f"          {self.source.function}: gave up on {len(records)} stream record(s) "
            f"({condition}); failure record sent to {self.on_failure_url.rsplit('/', 1)[-1]}"
        )


class TtlSweeper(Loop):
    """Delete items whose TTL attribute is in the past (moto never expires items).

    A periodic Scan: fine for a developer's table, never what production does (DynamoDB's own
    TTL does it there). Deleted keys are marked so their REMOVE records look like TTL deletes.
    """

    def __init__(
        self,
        table: str,
        attribute: str,
        key_names: list[str],
        clients: ClientFactory,
        marks: TtlMarks,
        interval_s: float,
    ) -> None:
        super().__init__(f"ttl:{table}")
        self.table = table
        self.attribute = attribute
        self.key_names = key_names
        self.ddb = clients("dynamodb")
        self.marks = marks
        self.interval_s = interval_s
        self.deleted = 0

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                self.sweep()
            except Exception as err:
                self._failed(err)

    def sweep(self, now: float | None = None) -> int:
        """Delete every expired item now; the number deleted."""
        now_s = int(time.time() if now is None else now)
        names = {f"#k{i}": k for i, k in enumerate(self.key_names)} | {"#ttl": self.attribute}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "#ttl < :now",
            "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(self.key_names))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":now": {"N": str(now_s)}},
        }
        count = 0
        while True:
            page = self.ddb.scan(**kwargs)
            for key in page.get("Items", []):
                self.marks.add(key)
                try:
                    self.ddb.delete_item(
                        TableName=self.table,
                        Key=key,
                        ConditionExpression="#ttl < :now",
                        ExpressionAttributeNames={"#ttl": self.attribute},
                        ExpressionAttributeValues={":now": {"N": str(now_s)}},
                    )
                    count += 1
                except self.ddb.exceptions.ConditionalCheckFailedException:
                    self.marks.discard(key)  # refreshed since the scan: not expired any more
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self.deleted += count
        return count


class Scheduler(Loop):
    """Invoke a function on its schedule expression with an EventBridge scheduled event."""

    def __init__(self, source: ScheduleSource, invoker: Invoker, region: str, account: str) -> None:
        super().__init__(f"schedule:{source.function}:{source.event}")
        self.source = source
        self.invoker = invoker
        self.region = region
        self.account = account
        self.schedule = parse_expression(source.expression)

    def rule_arn(self) -> str:
        service, kind = (
            ("scheduler", "schedule/default") if self.source.kind == "ScheduleV2" else ("events", "rule")
        )
        name = f"{self.source.function}-{self.source.event}"
        return f"arn:aws:{service}:{self.region}:{self.account}:{kind}/{name}"

    def event(self) -> Any:
        if self.source.input is not None:
            return json.loads(self.source.input)
        return scheduled_event(self.rule_arn(), self.region, self.account)

    def fire(self, reason: str = "schedule") -> Any:
        return self.invoker.invoke(
            self.source.function, self.event(), trigger=reason, source=self.source.event
        )

    def next_run(self) -> datetime | None:
        return self.schedule.next_after(datetime.now(UTC))

    def run(self) -> None:
        while not self.stopping.is_set():
            at = self.next_run()
            if at is None:
                return  # on demand only
            if self.stopping.wait(max(0.0, (at - datetime.now(UTC)).total_seconds())):
                return
            try:
                self.fire()
            except Exception as err:
                self._failed(err)
