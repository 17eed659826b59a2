"""The front door's API Gateway behaviour, with a scripted function behind it (no emulator)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from devstack.frontdoor import FrontDoor
from devstack.plan import ApiRoute
from devstack.runtime import Outcome

ROUTES = [
    ApiRoute("Webhook", "E", "LoyaltyApi", "/webhooks/{channel}", "POST", None),
    ApiRoute("Staff", "E", "LoyaltyApi", "/customers/{customer_id}", "GET", "AWS_IAM"),
    ApiRoute("Http", "E", "ServerlessHttpApi", "/h/{id}", "ANY", None, payload="2.0"),
]


class FakeStack:
    def __init__(self) -> None:
        self.plan = SimpleNamespace(routes=ROUTES)
        self.api_stage = "v1"
        self.account = "123456789012"
        self.staff_token = "tok"
        self.moto_url = "http://moto"
        self.events: list[tuple[str, Any]] = []
        self.answer: Any = {"statusCode": 200, "headers": {"X-A": "1"}, "body": "{}"}
        self.ok = True
        self.invoker = SimpleNamespace(invoke=self._invoke)
        self.console = SimpleNamespace(line=lambda _text: None)

    def _invoke(self, function: str, event: Any, **_: Any) -> Outcome:
        self.events.append((function, event))
        return Outcome(function, "api", "", 1, 1.0, ok=self.ok, result=self.answer)

    def invoke_schedule(self, name: str) -> Outcome:
        if name != "Job":
            raise KeyError(name)
        return Outcome("JobFn", "schedule", name, 1, 2.0, ok=True, result={"done": 1})

    def sweep_ttl(self) -> int:
        return 3


@pytest.fixture
def door() -> Iterator[tuple[FrontDoor, FakeStack]]:
    stack = FakeStack()
    front = FrontDoor(stack, "127.0.0.1", 0)  # type: ignore[arg-type]
    yield front, stack
    front.server.server_close()


def _call(front: FrontDoor, method: str, path: str, headers: list[tuple[str, str]] | None = None) -> Any:
    return front.handle(method, path, headers or [], b'{"x": 1}', "10.0.0.1")


def test_a_route_gets_the_rest_event_and_its_response_is_written(door: tuple[FrontDoor, FakeStack]) -> None:
    front, stack = door
    status, headers, body = _call(front, "POST", "/webhooks/pos?a=1", [("Content-Type", "application/json")])
    assert (status, body) == (200, b"{}")
    assert ("X-A", "1") in headers
    function, event = stack.events[-1]
    assert function == "Webhook"
    assert event["pathParameters"] == {"channel": "pos"}
    assert event["queryStringParameters"] == {"a": "1"}
    assert event["requestContext"]["identity"]["sourceIp"] == "10.0.0.1"
    assert event["body"] == '{"x": 1}'


def test_the_stage_prefix_is_accepted(door: tuple[FrontDoor, FakeStack]) -> None:
    front, stack = door
    assert _call(front, "POST", "/v1/webhooks/web")[0] == 200
    assert stack.events[-1][1]["path"] == "/webhooks/web"
    assert stack.events[-1][1]["requestContext"]["path"] == "/v1/webhooks/web"


def test_unknown_paths_and_methods(door: tuple[FrontDoor, FakeStack]) -> None:
    front, stack = door
    status, _, body = _call(front, "GET", "/nope")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "route_not_found"
    status, headers, _ = _call(front, "PUT", "/webhooks/pos")
    assert status == 405
    assert headers["Allow"] == "POST"
    assert not stack.events


def test_staff_routes_need_the_token_and_then_carry_an_iam_identity(
    door: tuple[FrontDoor, FakeStack],
) -> None:
    front, stack = door
    assert _call(front, "GET", "/customers/c_1")[0] == 403
    assert _call(front, "GET", "/customers/c_1", [("Authorization", "Bearer nope")])[0] == 403
    assert not stack.events
    assert _call(front, "GET", "/customers/c_1", [("authorization", "Bearer tok")])[0] == 200
    assert stack.events[-1][1]["requestContext"]["identity"]["user"] == "local-staff"


def test_a_failed_invocation_or_a_bad_response_is_a_502(door: tuple[FrontDoor, FakeStack]) -> None:
    front, stack = door
    stack.ok = False
    assert _call(front, "POST", "/webhooks/pos")[0] == 502
    stack.ok, stack.answer = True, {"body": "no status"}
    assert _call(front, "POST", "/webhooks/pos")[0] == 502


def test_binary_responses_are_decoded(door: tuple[FrontDoor, FakeStack]) -> None:
    front, stack = door
    stack.answer = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    assert _call(front, "POST", "/webhooks/pos")[2] == b"\x00\x01"


def test_http_api_routes_get_the_2_0_event_and_response_rules(door: tuple[FrontDoor, FakeStack]) -> None:
    front, stack = door
    stack.answer = {"plain": "json"}
    status, _, body = _call(front, "DELETE", "/h/7")
    assert (status, json.loads(body)) == (200, {"plain": "json"})
    event = stack.events[-1][1]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /h/{id}"
    assert event["pathParameters"] == {"id": "7"}


def test_control_endpoints(door: tuple[FrontDoor, FakeStack]) -> None:
    front, _ = door
    status, _, body = _call(front, "POST", "/__devstack/schedules/Job")
    assert status == 200
    assert json.loads(body)["result"] == {"done": 1}
    assert _call(front, "POST", "/__devstack/schedules/Other")[0] == 404
    assert json.loads(_call(front, "POST", "/__devstack/ttl-sweep")[2]) == {"deleted": 3}
    assert json.loads(_call(front, "GET", "/__devstack/health")[2])["status"] == "ok"
