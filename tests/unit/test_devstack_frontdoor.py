"""The front door's API Gateway behaviour, with a scripted function behind it (no emulator)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack import sigv4
from devstack.cognito import JwtAuthorizer
from devstack.frontdoor import FrontDoor
from devstack.plan import ApiRoute
from devstack.runtime import Outcome

ROUTES = [
    ApiRoute("Webhook", "E", "LoyaltyApi", "/webhooks/{channel}", "POST", None),
    ApiRoute("Staff", "E", "LoyaltyApi", "/customers/{customer_id}", "GET", "AWS_IAM"),
    ApiRoute("Http", "E", "ServerlessHttpApi", "/h/{id}", "ANY", None, payload="2.0"),
    ApiRoute("Jwt", "E", "HttpApi", "/j/{id}", "GET", "StaffJwt", payload="2.0"),
    ApiRoute("Machine", "E", "HttpApi", "/m/{id}", "PUT", "AWS_IAM", payload="2.0"),
]
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_staff"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _token(key: Any = KEY, kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "s-1",
        "aud": "console",
        "token_use": "id",
        "exp": now + 600,
        "iat": now,
        "email": "store@demo.local",
        "custom:store_id": "MAD-SOL",
        "cognito:groups": ["store-staff", "admin"],
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


class FakeStack:
    def __init__(self) -> None:
        self.plan = SimpleNamespace(routes=ROUTES)
        self.api_stage = "v1"
        self.http_stages = {"HttpApi": "v1"}
        self.account = "123456789012"
        self.iam_secrets = {"AKIDLOCAL": "local-secret"}
        authorizer = JwtAuthorizer("StaffJwt", ISSUER, frozenset({"console"}), "http://unused")
        authorizer._keys = {"k1": KEY.public_key()}
        self.jwt_authorizers = {"StaffJwt": authorizer}
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


def _signed(method: str, path: str, body: bytes, secret: str = "local-secret") -> list[tuple[str, str]]:  # noqa: S107
    headers = sigv4.sign(
        method=method,
        url=f"http://127.0.0.1:3000{path}",
        headers={"Content-Type": "application/json"},
        body=body,
        key="AKIDLOCAL",
        secret=secret,
        token=None,
        region="eu-west-1",
    )
    return [("Host", "127.0.0.1:3000"), *headers.items()]


def test_iam_routes_need_a_good_sigv4_signature_and_then_carry_the_iam_identity(
    door: tuple[FrontDoor, FakeStack],
) -> None:
    front, stack = door
    body = b'{"x": 1}'
    assert _call(front, "PUT", "/m/1")[0] == 403
    assert _call(front, "PUT", "/m/1", [("Authorization", "Bearer nope")])[0] == 403
    assert _call(front, "PUT", "/m/1", _signed("PUT", "/m/1", body, secret="wrong"))[0] == 403
    assert _call(front, "PUT", "/m/1", _signed("PUT", "/m/2", body))[0] == 403  # signed another path
    assert front.handle("PUT", "/m/1", _signed("PUT", "/m/1", b"{}"), body, "10.0.0.1")[0] == 403
    assert _call(front, "GET", "/customers/c_1", _signed("GET", "/customers/c_2", body))[0] == 403
    assert not stack.events
    assert _call(front, "PUT", "/m/1", _signed("PUT", "/m/1", body))[0] == 200
    iam = stack.events[-1][1]["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == "AKIDLOCAL"
    assert iam["userArn"].startswith("arn:aws:iam::123456789012:")
    assert _call(front, "GET", "/customers/c_1", _signed("GET", "/customers/c_1", body))[0] == 200
    assert stack.events[-1][1]["requestContext"]["identity"]["accessKey"] == "AKIDLOCAL"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="no token"),
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param(_token(OTHER_KEY), id="forged signature"),
        pytest.param(_token(kid="k2"), id="unknown key"),
        pytest.param(_token(exp=int(time.time()) - 5), id="expired"),
        pytest.param(_token(iss="https://cognito-idp.eu-west-1.amazonaws.com/other"), id="other pool"),
        pytest.param(_token(aud="someone-else"), id="other client"),
        pytest.param(_token(token_use="refresh"), id="wrong token_use"),
        pytest.param(_token(token_use=None), id="no token_use"),
        pytest.param(
            jwt.encode(
                {"iss": ISSUER, "aud": "console", "token_use": "id", "exp": 2**31},
                "k" * 40,
                algorithm="HS256",
            ),
            id="hs256",
        ),
    ],
)
def test_jwt_routes_refuse_bad_tokens_with_401_before_any_function_runs(
    door: tuple[FrontDoor, FakeStack], token: str
) -> None:
    front, stack = door
    status, _, body = _call(front, "GET", "/j/1", [("Authorization", f"Bearer {token}")] if token else [])
    assert status == 401
    assert json.loads(body) == {"message": "Unauthorized"}
    assert not stack.events


def test_jwt_routes_pass_the_claims_rendered_as_an_http_api_does(door: tuple[FrontDoor, FakeStack]) -> None:
    front, stack = door
    access = _token(aud=None, client_id="console", token_use="access")
    for token in (_token(), access):
        assert _call(front, "GET", "/j/1", [("Authorization", f"Bearer {token}")])[0] == 200
    claims = stack.events[0][1]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["cognito:groups"] == "[store-staff admin]"
    assert claims["custom:store_id"] == "MAD-SOL"
    assert isinstance(claims["exp"], str)
    assert stack.events[1][1]["requestContext"]["authorizer"]["jwt"]["claims"]["client_id"] == "console"


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
