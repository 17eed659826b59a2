"""Load a function's handler module by path (every function has its own ``app.py``)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from devstack.provision import local_secrets
from loyalty.ingest.signature import signed_headers

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` as module ``fn_<name>`` (fresh per call)."""
    path = ROOT / "functions" / name / "app.py"
    module_name = f"fn_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> Any:
    """An event from ``events/`` (the same files ``sam local invoke -e`` uses)."""
    return json.loads((EVENTS / name).read_text())


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def api_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    resource: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event."""
    raw = body.decode() if isinstance(body, bytes) else body
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": "test-request",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": raw,
        "isBase64Encoded": False,
    }


def signed_webhook(
    channel: str, document: Any, secret: str | None = None, timestamp: int | None = None
) -> dict[str, Any]:
    """A ``POST /webhooks/{channel}`` API event for ``document``, signed with Standard Webhooks."""
    body = json.dumps(document).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    headers = signed_headers(secret or local_secrets()[channel][0], ts, body)
    return api_event(
        "POST",
        f"/webhooks/{channel}",
        body,
        headers,
        path_parameters={"channel": channel},
        resource="/webhooks/{channel}",
    )


def sqs_event(bodies: list[str], queue_arn: str = "arn:aws:sqs:eu-west-1:123456789012:q") -> dict[str, Any]:
    """An SQS batch event with one record per body (message ids m0, m1, ...)."""
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"rh{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "test",
                    "ApproximateFirstReceiveTimestamp": "1700000000000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-west-1",
            }
            for i, body in enumerate(bodies)
        ]
    }
