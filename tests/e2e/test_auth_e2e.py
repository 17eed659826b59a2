"""Every route of the template, for every caller, on the local stack with real Cognito tokens.

Callers: nobody, a forged token, the demo customer (the other pool), and one demo staff user per
role. A protected route refuses the first three with 401 (JWT routes) or 403 (AWS_IAM routes)
before any function runs; each role gets exactly what the access policy gives it (403 otherwise)
and an allowed call never answers 401/403 or a 5xx.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from devstack.plan import ApiRoute
from devstack.stack import LocalStack
from loyalty.auth.policy import rule_for
from loyalty.auth.principal import Role
from tests.support.stacks import seed_profile

pytestmark = pytest.mark.e2e
FILL = {"customer_id": "c_" + "0" * 32, "review_id": "r_" + "0" * 32, "day": "2026-11-30", "sku": "SKU-WALK"}
STAFF_ROLES = [r.value for r in Role]


def _path(route: ApiRoute) -> str:
    return re.sub(r"\{([^}+]+)\+?\}", lambda m: FILL.get(m.group(1), "walk-1"), route.path)


def _protected(stack: LocalStack) -> list[ApiRoute]:
    return [r for r in stack.plan.routes if r.auth is not None]


def _forged(token: str) -> str:
    head, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cognito:groups"] = ["admin"]
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{raw}.{base64.urlsafe_b64encode(b'x' * 256).rstrip(b'=').decode()}"


def _call(stack: LocalStack, route: ApiRoute, token: str | None) -> int:
    headers = {"Content-Type": "application/json", "Idempotency-Key": "walk-1"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return stack.request(route.method, _path(route), b"{}", headers).status


def test_no_protected_route_admits_anonymous_forged_or_other_pool_callers(local_stack: LocalStack) -> None:
    routes = _protected(local_stack)
    assert routes, "the template has protected routes"
    forged = _forged(local_stack.token("store-staff"))
    customer = local_stack.token("customer")
    calls_before = len(local_stack.invoker.history)
    for route in routes:
        refusal = 403 if route.auth == "AWS_IAM" else 401
        for label, token in (("anonymous", None), ("forged", forged), ("garbage", "not-a-jwt")):
            assert _call(local_stack, route, token) == refusal, (label, route.method, route.path)
        if route.auth == "StaffJwt":
            assert _call(local_stack, route, customer) == 401, ("customer token", route.path)
    # none of these requests reached a function
    assert [o for o in list(local_stack.invoker.history)[calls_before:] if o.trigger == "api"] == []


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_each_staff_role_gets_exactly_what_the_policy_gives(local_stack: LocalStack, role: str) -> None:
    token = local_stack.token(role)
    for route in _protected(local_stack):
        rule = rule_for(f"{route.method} {route.path}")
        assert rule is not None
        status = _call(local_stack, route, token)
        where = (role, route.method, route.path, status)
        assert status < 500, where
        if route.auth == "AWS_IAM":
            assert status == 403, where  # a staff token is no SigV4 signature
        elif route.auth == "StaffJwt" and (role == "admin" or Role(role) in rule.roles):
            assert status not in {401, 403}, where
        else:
            assert status in {401, 403}, where


def test_machine_routes_take_a_sigv4_signature(local_stack: LocalStack) -> None:
    iam = [r for r in local_stack.plan.routes if r.auth == "AWS_IAM"]
    for route in iam:
        resp = local_stack.api(route.method, _path(route), {"low_stock_threshold": 2})
        assert resp.status not in {401, 403}, (route.path, resp.status, resp.body)
        assert resp.status < 500


def test_store_staff_collect_only_at_their_own_store(local_stack: LocalStack, uid: str) -> None:
    # Given a reservation at another store than the demo store clerk's
    sku = f"SKU-AUTH-{uid}"
    customer = "c_" + uid.ljust(32, "0")
    seed_profile(local_stack, customer)
    receipt = {
        "message_id": f"GRN-{uid}",
        "type": "receipt",
        "location_id": "BCN-01",
        "occurred_at": "2026-11-01T08:00:00+00:00",
        "lines": [{"sku": sku, "quantity": 3}],
    }
    assert local_stack.post_webhook("stock", receipt).status == 202
    local_stack.wait_quiet()
    body = {"customer_id": customer, "sku": sku, "quantity": 1, "location_id": "BCN-01"}
    created = local_stack.api("POST", "/reservations", body, headers={"Idempotency-Key": uid})
    assert created.status == 201, created.body
    rid = created.json()["reservation_id"]
    # When the Madrid clerk tries to collect it: refused; an admin may
    refused = local_stack.api("POST", f"/reservations/{rid}/collect", role="store-staff")
    assert refused.status == 403
    assert refused.json()["error"]["code"] == "other_store"
    assert local_stack.api("POST", f"/reservations/{rid}/collect", role="admin").status == 200
