"""Build DynamoDB stream records in Lambda's shape from Python items."""

from __future__ import annotations

from typing import Any

from loyalty.store.table import serialize

STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/loyalty-local/stream/2026-01-01T00:00:00.000"


def stream_record(
    new: dict[str, Any] | None,
    old: dict[str, Any] | None = None,
    *,
    seq: int = 1,
    ttl_delete: bool = False,
) -> dict[str, Any]:
    """One stream record (INSERT / MODIFY / REMOVE inferred from the images)."""
    name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    image = new or old or {}
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1_763_900_000,
        "Keys": serialize({"pk": image["pk"], "sk": image["sk"]}),
        "SequenceNumber": f"{seq:021d}",
        "SizeBytes": 256,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        body["NewImage"] = serialize(new)
    if old is not None:
        body["OldImage"] = serialize(old)
    record: dict[str, Any] = {
        "eventID": f"ev{seq}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": body,
        "eventSourceARN": STREAM_ARN,
    }
    if ttl_delete:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def stream_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}
