"""Recover after an outage: re-route logged events, move dead letters back to their queues.

Both are safe to repeat: every consumer applies a message once per event id (or message id).
The router is the SAME code the stream consumer runs (``loyalty.routing.service.route_record``),
fed the images the stream would have carried: the event as first recorded and, when identity
resolution attributed it, the attribution (the event's MODIFY, or its timeline entry's INSERT).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loyalty import aws
from loyalty.eventlog.store import EventLog, from_item
from loyalty.identity.resolve import Resolver
from loyalty.routing.service import route_record
from loyalty.store.table import Item

STREAM_FAILURES = "stream-failures"


def stream_images(item: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """The (new, old) images the table stream carried for one event item."""
    recorded = {k: v for k, v in item.items() if k != "customer_id"}
    images: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = [(recorded, None)]
    if item.get("customer_id"):
        images.append((item, recorded))
    return images


@dataclass
class ReplayReport:
    events: int = 0
    messages: int = 0
    per_queue: dict[str, int] = field(default_factory=dict)
    event_ids: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "messages": self.messages,
            "per_queue": self.per_queue,
            "event_ids": self.event_ids,
            "missing": self.missing,
        }


def replay(event_ids: Iterable[str], log: EventLog | None = None) -> ReplayReport:
    """Route every event again, as the stream did (duplicates are absorbed by the consumers)."""
    log = log or EventLog()
    report = ReplayReport()
    for event_id in event_ids:
        item: Item | None = log.table.get(f"EVENT#{event_id}", "EVENT")
        if item is None:
            report.missing.append(event_id)
            continue
        images = stream_images(item)
        # issue 16 (``attr``): an event attributed by its timeline entry's INSERT
        entry = None if item.get("customer_id") else Resolver().attribution(from_item(item))
        if entry is not None:
            images.append((entry, None))
        for new, old in images:
            for queue in route_record(new, old):
                report.per_queue[queue] = report.per_queue.get(queue, 0) + 1
                report.messages += 1
        report.events += 1
        report.event_ids.append(event_id)
    return report


@dataclass
class RedriveReport:
    queue: str
    target: str
    moved: int = 0
    message_ids: list[str] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queue": self.queue, "target": self.target, "moved": self.moved}
        out["message_ids"] = self.message_ids
        if self.windows:
            out["stream_windows"] = self.windows
        return out


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    resp = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        VisibilityTimeout=60,
        MessageAttributeNames=["All"],
    )
    return list(resp.get("Messages", []))


def redrive(dlq_url: str, target_url: str, limit: int | None = None) -> RedriveReport:
    """Move messages from a dead-letter queue back to its source queue (send, then delete)."""
    sqs = aws.client("sqs")
    report = RedriveReport(dlq_url.rsplit("/", 1)[-1], target_url.rsplit("/", 1)[-1])
    while limit is None or report.moved < limit:
        messages = _receive(sqs, dlq_url)
        if not messages:
            break
        for m in messages:
            kwargs: dict[str, Any] = {"QueueUrl": target_url, "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                kwargs["MessageAttributes"] = m["MessageAttributes"]
            sqs.send_message(**kwargs)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
            report.moved += 1
            report.message_ids.append(m["MessageId"])
    return report


def stream_failure_windows(failures_url: str, delete: bool = False) -> RedriveReport:
    """The time windows of the stream records consumers gave up on (their failure records only
    carry shard metadata: replay those windows from the event log)."""
    sqs = aws.client("sqs")
    report = RedriveReport(failures_url.rsplit("/", 1)[-1], "replay")
    seen: set[str] = set()
    while True:
        messages = [m for m in _receive(sqs, failures_url) if m["MessageId"] not in seen]
        if not messages:
            break
        for m in messages:
            seen.add(m["MessageId"])
            info = json.loads(m["Body"]).get("DDBStreamBatchInfo", {})
            report.windows.append(
                {
                    "from": info.get("approximateArrivalOfFirstRecord"),
                    "to": info.get("approximateArrivalOfLastRecord"),
                    "records": info.get("batchSize"),
                }
            )
            report.message_ids.append(m["MessageId"])
            if delete:
                sqs.delete_message(QueueUrl=failures_url, ReceiptHandle=m["ReceiptHandle"])
                report.moved += 1
    return report
