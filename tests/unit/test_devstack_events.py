"""Builders of the events Lambda hands to functions, schedule expressions and route matching."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.frontdoor import Router
from devstack.lambda_events import (
    Request,
    api_event,
    http_api_event,
    is_binary,
    scheduled_event,
    sqs_event,
    stream_failure_record,
    stream_record,
)
from devstack.plan import ApiRoute
from devstack.schedule import parse_expression

STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/loyalty-local/stream/2026-01-01T00:00:00"


def _api(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "method": "POST",
        "path": "/webhooks/pos",
        "resource": "/webhooks/{channel}",
        "path_parameters": {"channel": "pos"},
        "headers": [("Content-Type", "application/json"), ("X-Tag", "a"), ("X-Tag", "b")],
        "query": "page=1&tag=x&tag=y",
        "body": b'{"a": 1}',
        "stage": "v1",
        "source_ip": "127.0.0.1",
        "account": "123456789012",
        "api_id": "loyaltyapi",
    }
    kwargs.update(overrides)
    request = {k: kwargs.pop(k) for k in list(kwargs) if k in Request.__dataclass_fields__}
    return api_event(Request(**request), **kwargs)


def test_api_event_has_the_rest_proxy_shape_powertools_reads() -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    event = APIGatewayProxyEvent(_api())
    assert event.http_method == "POST"
    assert event.path == "/webhooks/pos"
    assert event.resource == "/webhooks/{channel}"
    assert event.path_parameters == {"channel": "pos"}
    assert event.headers["X-Tag"] == "b"
    assert event.multi_value_headers["X-Tag"] == ["a", "b"]
    assert event.query_string_parameters == {"page": "1", "tag": "y"}
    assert event.multi_value_query_string_parameters == {"page": ["1"], "tag": ["x", "y"]}
    assert event.request_context.stage == "v1"
    assert event.request_context.resource_path == "/webhooks/{channel}"
    assert event.request_context.identity.source_ip == "127.0.0.1"
    assert event.request_context.request_id
    assert event.body == '{"a": 1}'
    assert not event.is_base64_encoded


def test_binary_bodies_are_base64_encoded() -> None:
    raw = bytes(range(256))
    event = _api(headers=[("Content-Type", "application/octet-stream")], body=raw)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw
    assert is_binary("application/json", b"\xff\xfe")  # not UTF-8: cannot be passed as text
    assert not is_binary("application/vnd.api+json", b"{}")
    assert _api(body=b"")["body"] is None


def test_sqs_event_from_received_messages() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh1",
        "Body": "{}",
        "MD5OfBody": "x",
        "Attributes": {
            "ApproximateReceiveCount": "3",
            "SentTimestamp": "1",
            "Policy": "not a record attribute",
        },
        "MessageAttributes": {"type": {"DataType": "String", "StringValue": "order.completed"}},
    }
    arn = "arn:aws:sqs:eu-west-1:123456789012:q"
    (record,) = sqs_event([message], arn, "eu-west-1")["Records"]
    assert record["messageId"] == "m1"
    assert record["receiptHandle"] == "rh1"
    assert record["eventSourceARN"] == arn
    assert record["eventSource"] == "aws:sqs"
    assert record["attributes"] == {"ApproximateReceiveCount": "3", "SentTimestamp": "1"}
    assert record["messageAttributes"]["type"]["stringValue"] == "order.completed"
    assert record["messageAttributes"]["type"]["dataType"] == "String"
    assert "binaryValue" not in record["messageAttributes"]["type"]
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    wrapped = SQSRecord(record).message_attributes["type"]
    assert wrapped is not None
    assert wrapped.string_value == "order.completed"


def _raw_stream(name: str = "REMOVE") -> dict[str, Any]:
    return {
        "eventID": "e1",
        "eventName": name,
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC),
            "Keys": {"pk": {"S": "a"}, "sk": {"S": "b"}},
            "OldImage": {"pk": {"S": "a"}, "sk": {"S": "b"}, "n": {"N": "1"}},
            "SequenceNumber": "100",
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def test_stream_record_gets_lambdas_shape() -> None:
    record = stream_record(_raw_stream(), STREAM_ARN, "eu-west-1", ttl_delete=False)
    assert record["eventSourceARN"] == STREAM_ARN
    assert record["awsRegion"] == "eu-west-1"
    assert record["dynamodb"]["ApproximateCreationDateTime"] == int(
        datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()
    )
    assert record["dynamodb"]["OldImage"]["n"] == {"N": "1"}  # images stay in DynamoDB JSON
    assert "userIdentity" not in record
    json.dumps(record)  # what the worker protocol needs


def test_ttl_deletes_carry_the_service_identity_and_only_removes() -> None:
    record = stream_record(_raw_stream(), STREAM_ARN, "eu-west-1", ttl_delete=True)
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert "userIdentity" not in stream_record(
        _raw_stream("MODIFY"), STREAM_ARN, "eu-west-1", ttl_delete=True
    )


def test_powertools_parses_the_stream_record() -> None:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

    record = DynamoDBRecord(stream_record(_raw_stream(), STREAM_ARN, "eu-west-1", ttl_delete=True))
    assert record.dynamodb is not None
    assert record.dynamodb.old_image == {"pk": "a", "sk": "b", "n": 1}
    assert record.user_identity == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_scheduled_event_and_failure_record() -> None:
    event = scheduled_event(
        "arn:aws:events:eu-west-1:1:rule/x", "eu-west-1", "1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-01-02T03:04:05Z"
    records = [stream_record(_raw_stream(), STREAM_ARN, "eu-west-1", ttl_delete=False)]
    failure = stream_failure_record(
        records=records,
        function_arn="arn:aws:lambda:eu-west-1:1:function:f",
        stream_arn=STREAM_ARN,
        shard_id="shard-1",
        condition="RetryAttemptsExhausted",
        attempts=6,
        error="Unhandled",
    )
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("100", "100", 1)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 6


@pytest.mark.parametrize(
    ("expression", "now", "expected"),
    [
        ("rate(5 minutes)", datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 5, tzinfo=UTC)),
        ("rate(1 day)", datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 2, 0, 0, tzinfo=UTC)),
        ("cron(0 3 * * ? *)", datetime(2026, 1, 1, 3, 0, tzinfo=UTC), datetime(2026, 1, 2, 3, 0, tzinfo=UTC)),
        (
            "cron(*/15 * * * ? *)",
            datetime(2026, 1, 1, 3, 1, tzinfo=UTC),
            datetime(2026, 1, 1, 3, 15, tzinfo=UTC),
        ),
        # 2026-01-01 is a Thursday; MON-FRI at 09:30 -> Friday 2nd
        (
            "cron(30 9 ? * MON-FRI *)",
            datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
            datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
        ),
        ("cron(0 8 1 JAN,JUL ? *)", datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        ("cron(0 10 ? * 6L *)", datetime(2026, 1, 1, tzinfo=UTC), None),  # valid; on demand only locally
        ("at(2030-01-01T00:00:00)", datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
    ],
)
def test_schedule_expressions(expression: str, now: datetime, expected: datetime | None) -> None:
    assert parse_expression(expression).next_after(now) == expected


@pytest.mark.parametrize(
    "expression", ["rate(0 minutes)", "rate(5 weeks)", "cron(0 25 * * ? *)", "cron(* * *)", "daily"]
)
def test_bad_schedule_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_expression(expression)


def _route(path: str, method: str = "GET") -> ApiRoute:
    return ApiRoute(function=f"F{path}", event="E", api="Api", path=path, method=method, auth=None)


def test_router_prefers_literal_segments_and_reports_allowed_methods() -> None:
    router = Router([_route("/stock/{sku}"), _route("/stock/alerts"), _route("/files/{path+}", "ANY")])
    route, params, _ = router.match("GET", "/stock/alerts")
    assert route is not None
    assert route.path == "/stock/alerts"
    route, params, _ = router.match("GET", "/stock/SKU%2D1")
    assert route is not None
    assert (route.path, params) == ("/stock/{sku}", {"sku": "SKU-1"})
    route, params, _ = router.match("DELETE", "/files/a/b/c.txt")
    assert route is not None
    assert params == {"path": "a/b/c.txt"}
    route, _, allowed = router.match("POST", "/stock/x")
    assert route is None
    assert allowed == ["GET"]
    assert router.match("GET", "/nothing")[0] is None


def test_http_api_event_has_the_2_0_shape_powertools_reads() -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    raw = http_api_event(
        Request(
            method="GET",
            path="/stock/SKU-1",
            path_parameters={"sku": "SKU-1"},
            headers=[("Accept", "a"), ("accept", "b"), ("Cookie", "s=1; t=2")],
            query="loc=MAD&loc=BCN",
            body=b"",
            source_ip="127.0.0.1",
            account="123456789012",
            api_id="httpapi",
        ),
        route_key="GET /stock/{sku}",
    )
    event = APIGatewayProxyEventV2(raw)
    assert event.version == "2.0"
    assert event.route_key == "GET /stock/{sku}"
    assert event.raw_path == "/stock/SKU-1"
    assert event.path_parameters == {"sku": "SKU-1"}
    assert event.headers["accept"] == "a,b"
    assert event.cookies == ["s=1", "t=2"]
    assert event.query_string_parameters == {"loc": "MAD,BCN"}
    assert event.request_context.http.method == "GET"
    assert event.request_context.stage == "$default"
    assert "body" not in raw


def test_http_api_events_are_planned_with_payload_2_0() -> None:
    import copy

    from devstack.plan import build_plan
    from devstack.template import load

    template = copy.deepcopy(load())
    template["Resources"]["HttpProbe"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "functions/record_events/",
            "Handler": "app.handler",
            "Events": {
                "Get": {"Type": "HttpApi", "Properties": {"Path": "/probe/{id}", "Method": "get"}},
                "Default": {"Type": "HttpApi"},
            },
        },
    }
    routes = {r.event: r for r in build_plan(template).routes if r.function == "HttpProbe"}
    assert (routes["Get"].path, routes["Get"].method, routes["Get"].payload) == ("/probe/{id}", "GET", "2.0")
    assert (routes["Default"].path, routes["Default"].method) == ("/{proxy+}", "ANY")
