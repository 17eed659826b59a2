"""Build the events Lambda hands to functions: API Gateway HTTP API (2.0) and REST (1.0) proxy, SQS,
EventBridge scheduled events, and the on-failure record of a stream event source."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def is_binary(content_type: str, body: bytes) -> bool:
    """Whether API Gateway would hand ``body`` over base64 encoded (non-text media or bytes)."""
    media = content_type.split(";", 1)[0].strip().lower()
    textual = not media or media.startswith(TEXT_TYPES) or media.endswith("+json")
    if not textual:
        return bool(body)
    try:
        body.decode()
    except UnicodeDecodeError:
        return True
    return False


@dataclass(frozen=True)
class Request:
    """One HTTP request as the front door received it: what both API event formats are built from."""

    method: str
    path: str
    path_parameters: Mapping[str, str]
    headers: Iterable[tuple[str, str]]
    query: str
    body: bytes
    source_ip: str
    account: str
    api_id: str


def api_event(
    request: Request, *, resource: str, stage: str, identity: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The REST (v1) proxy event for one request."""
    method, path, query, body = request.method, request.path, request.query, request.body
    account, api_id, source_ip = request.account, request.api_id, request.source_ip
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in request.headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    qs_single: dict[str, str] = {}
    qs_multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        qs_single[name] = value
        qs_multi.setdefault(name, []).append(value)
    content_type = next((v for k, v in single.items() if k.lower() == "content-type"), "")
    binary = is_binary(content_type, body)
    now = time.time()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": qs_single or None,
        "multiValueQueryStringParameters": qs_multi or None,
        "pathParameters": dict(request.path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "resourceId": hashlib.sha1(resource.encode(), usedforsecurity=False).hexdigest()[:6],
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now * 1000),
            "domainName": single.get("Host", "127.0.0.1"),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": next((v for k, v in single.items() if k.lower() == "user-agent"), None),
                **(identity or {}),
            },
        },
        "body": (base64.b64encode(body).decode() if binary else body.decode()) if body else None,
        "isBase64Encoded": binary,
    }


def http_api_event(
    request: Request,
    *,
    route_key: str,
    authorizer: Mapping[str, Any] | None = None,
    stage: str = "$default",
) -> dict[str, Any]:
    """The HTTP API (payload format 2.0) event for one request; a named stage prefixes ``rawPath``."""
    method, path, query, body = request.method, request.path, request.query, request.body
    account, api_id, source_ip = request.account, request.api_id, request.source_ip
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    binary = is_binary(joined.get("content-type", ""), body)
    now = time.time()
    context: dict[str, Any] = {
        "accountId": account,
        "apiId": api_id,
        "domainName": joined.get("host", "127.0.0.1"),
        "domainPrefix": api_id,
        "http": {
            "method": method,
            "path": path if stage == "$default" else f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": stage,
        "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now * 1000),
    }
    if authorizer:
        context["authorizer"] = dict(authorizer)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path if stage == "$default" else f"/{stage}{path}",
        "rawQueryString": query,
        "headers": joined,
        "requestContext": context,
        "isBase64Encoded": binary,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if request.path_parameters:
        event["pathParameters"] = dict(request.path_parameters)
    if body:
        event["body"] = base64.b64encode(body).decode() if binary else body.decode()
    return event


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for messages from ``receive_message`` (attributes requested: All)."""
    records = []
    for m in messages:
        attributes = {
            k: v
            for k, v in m.get("Attributes", {}).items()
            if k
            in {
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
                "MessageGroupId",
                "MessageDeduplicationId",
                "SequenceNumber",
                "AWSTraceHeader",
            }
        }
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": attributes,
                "messageAttributes": {
                    name: _message_attribute(a) for name, a in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def _message_attribute(attribute: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": attribute["DataType"]}
    if "StringValue" in attribute:
        out["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        out["binaryValue"] = base64.b64encode(attribute["BinaryValue"]).decode()
    return out


def sqs_filter_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as Lambda's SQS filter sees it: ``body`` parsed when it is JSON."""
    view = dict(record)
    with contextlib.suppress(TypeError, ValueError):
        view["body"] = json.loads(record["body"])
    return view


def _epoch(value: Any) -> float | int:
    if isinstance(value, datetime):
        seconds = value.timestamp()
        return int(seconds) if seconds == int(seconds) else round(seconds, 3)
    return float(value)


def stream_record(
    raw: Mapping[str, Any], stream_arn: str, region: str, *, ttl_delete: bool
) -> dict[str, Any]:
    """A record from ``get_records`` in Lambda's shape (epoch seconds, source ARN, TTL identity)."""
    change = dict(raw["dynamodb"])
    change["ApproximateCreationDateTime"] = _epoch(change["ApproximateCreationDateTime"])
    record: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }
    if ttl_delete and raw["eventName"] == "REMOVE":
        record["userIdentity"] = dict(TTL_IDENTITY)
    return record


def scheduled_event(rule_arn: str, region: str, account: str, now: datetime | None = None) -> dict[str, Any]:
    """The EventBridge "Scheduled Event" a schedule hands its target."""
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def stream_failure_record(
    *,
    records: list[dict[str, Any]],
    function_arn: str,
    stream_arn: str,
    shard_id: str,
    condition: str,
    attempts: int,
    error: str | None,
) -> dict[str, Any]:
    """What Lambda sends to a stream source's on-failure destination (pointers, not the data)."""

    def iso(record: dict[str, Any]) -> str:
        return datetime.fromtimestamp(
            float(record["dynamodb"]["ApproximateCreationDateTime"]), UTC
        ).isoformat()

    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": error or "Unhandled",
        },
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso(records[0]),
            "approximateArrivalOfLastRecord": iso(records[-1]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
