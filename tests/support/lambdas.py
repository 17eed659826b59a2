"""Load a function's handler module by path (every function has its own ``app.py``)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlencode

from devstack.provision import local_secrets
from loyalty.ingest.signature import signed_headers
from tests.support.permissions import recorded

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
    handler = getattr(module, "handler", None)
    if callable(handler):  # its AWS calls checked against its policy
        module.__dict__["handler"] = recorded(name, handler)
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

    remaining_ms: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


#: The staff pool of the sample events under ``events/api`` (set ``STAFF_ISSUER`` to it to replay them).
SAMPLE_STAFF_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_SAMPLESTAFF"
DEMO_STORE = "MAD-SOL"


def staff_claims(role: str, issuer: str | None = None, store_id: str | None = DEMO_STORE) -> dict[str, str]:
    """Verified claims of a staff ID token as an HTTP API renders them (groups ``"[a b]"``)."""
    claims = {
        "iss": issuer if issuer is not None else os.environ.get("STAFF_ISSUER", SAMPLE_STAFF_ISSUER),
        "sub": f"sub-{role}",
        "aud": "staff-console",
        "token_use": "id",
        "email": f"{role}@demo.local",
        "email_verified": "true",
        "cognito:groups": f"[{role}]",
        "exp": "4102444800",
    }
    if role == "store-staff" and store_id:
        claims["custom:store_id"] = store_id
    return claims


def http_api_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    resource: str | None = None,
    *,
    role: str | None = "admin",
    claims: dict[str, str] | None = None,
    iam: bool = False,
    payload: Literal["1.0", "2.0"] = "2.0",
) -> dict[str, Any]:
    """An HTTP API (2.0) event as API Gateway hands it over after its authorizer: a staff member of
    ``role`` (``claims`` to give others, ``iam`` for a SigV4 machine caller, ``role=None``: none);
    ``payload="1.0"``: a REST proxy event (``api_event``), built by the local stack's own builders."""
    from devstack.lambda_events import Request
    from devstack.lambda_events import api_event as build_rest
    from devstack.lambda_events import http_api_event as build

    raw = (body.encode() if isinstance(body, str) else body) or b""
    request = Request(
        method=method,
        path=path,
        path_parameters=path_parameters or {},
        headers=list((headers or {}).items()),
        query=urlencode(query or {}),
        body=raw,
        source_ip="127.0.0.1",
        account="123456789012",
        api_id="restapi" if payload == "1.0" else "httpapi",
    )
    if payload == "1.0":
        return build_rest(request, resource=resource or path, stage="v1")
    route = resource or path
    for name, value in (path_parameters or {}).items():
        if resource is None:
            route = route.replace(value, "{" + name + "}", 1)
    authorizer: dict[str, Any] | None = None
    if iam:
        arn = "arn:aws:iam::123456789012:user/erp"
        authorizer = {"iam": {"accessKey": "AKID", "accountId": "123456789012", "userArn": arn}}
    elif claims is not None or role is not None:
        authorizer = {
            "jwt": {"claims": claims if claims is not None else staff_claims(str(role)), "scopes": None}
        }
    return build(request, route_key=f"{method} {route}", authorizer=authorizer, stage="v1")


#: An API Gateway REST (v1) proxy event (the webhook and signed-link functions), no caller.
api_event = functools.partial(http_api_event, payload="1.0", role=None)


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
