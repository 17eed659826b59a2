"""The one SQS adapter: a message envelope, and sends whose failures all map the same way.

An ``Envelope`` is a JSON body and string message attributes; ``type`` names what the body is
(consumers dispatch on it with ``kind_of``). Every send raises ``TransientError`` when SQS does
not take every message (throttling, an outage, a partial batch), so a stream or queue batch
reports the record and it is retried; consumers are idempotent, so a message sent twice is
applied once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from loyalty import aws
from loyalty.errors import TransientError

BATCH = 10  # SendMessageBatch's limit
TYPE = "type"


class _Json(Protocol):
    def model_dump_json(self) -> str: ...


@dataclass(frozen=True)
class Envelope:
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, message: _Json, kind: str, **attributes: str) -> Envelope:
        """A pydantic message as JSON, its kind in the ``type`` attribute."""
        return cls(message.model_dump_json(), {TYPE: kind, **attributes})

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"MessageBody": self.body}
        if self.attributes:
            entry["MessageAttributes"] = {
                k: {"DataType": "String", "StringValue": v} for k, v in self.attributes.items()
            }
        return entry


def kind_of(record: Mapping[str, Any]) -> str | None:
    """The ``type`` attribute of a received SQS record (Lambda's record, or Powertools ``SQSRecord``)."""
    attribute = (record.get("messageAttributes") or {}).get(TYPE) or {}
    value = attribute.get("stringValue")
    return None if value is None else str(value)


def _call(op: str, queue_url: str, **kwargs: Any) -> Any:
    if not queue_url:
        raise TransientError(f"no queue configured for {op}")
    try:
        return getattr(aws.client("sqs"), op)(QueueUrl=queue_url, **kwargs)
    except (ClientError, BotoCoreError) as err:
        raise TransientError(f"queue {queue_url.rsplit('/', 1)[-1]} unavailable ({op}): {err}") from err


def send(queue_url: str, envelope: Envelope) -> None:
    _call("send_message", queue_url, **envelope.to_entry())


def send_batch(queue_url: str, envelopes: Sequence[Envelope]) -> None:
    """Send in batches of ten; already-sent entries of a failed batch are harmless (idempotent)."""
    unsent = send_each(queue_url, envelopes)
    if unsent:
        raise TransientError(f"queue {queue_url.rsplit('/', 1)[-1]} refused {len(unsent)} messages")


def send_each(queue_url: str, envelopes: Sequence[Envelope]) -> list[int]:
    """Send in batches of ten (one request per ten); the indexes of the envelopes SQS did not take.

    A request that fails as a whole (throttling, an outage) leaves its ten unsent; the caller
    reports what it carried for retry (consumers are idempotent, so a resend is harmless).
    """
    unsent: list[int] = []
    for start in range(0, len(envelopes), BATCH):
        chunk = envelopes[start : start + BATCH]
        entries = [{"Id": str(start + i), **e.to_entry()} for i, e in enumerate(chunk)]
        try:
            failed = _call("send_message_batch", queue_url, Entries=entries).get("Failed") or []
        except TransientError:
            unsent.extend(range(start, start + len(chunk)))
            continue
        unsent.extend(int(f["Id"]) for f in failed)
    return sorted(unsent)


def delay(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Make a received message visible again only after ``seconds``."""
    _call("change_message_visibility", queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)


__all__ = ["Envelope", "delay", "kind_of", "send", "send_batch", "send_each"]
