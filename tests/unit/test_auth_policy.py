"""Every route of template.yaml is protected as the access policy says; the policy's decisions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.plan import ApiRoute, build_plan
from devstack.template import load
from loyalty.auth.policy import POLICY, PUBLIC_PREFIXES, allowed_callers, authorize, require_store, rule_for
from loyalty.auth.principal import Pool, Principal
from loyalty.errors import Forbidden, Unauthorized

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load()
ROUTES = build_plan(TEMPLATE).routes


def _public_by_design(method: str, path: str) -> bool:
    """Signed webhooks, stock reads and routes protected by a signed link (the documented list)."""
    return (
        (method == "POST" and path.startswith("/webhooks/"))
        or (method, path) == ("GET", "/webhooks/whatsapp")  # Meta's handshake: the verify token
        or (method == "GET" and path.startswith("/stock"))
        or path.startswith(tuple(p for p in PUBLIC_PREFIXES if p != "/webhooks/"))
    )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_template_route_takes_credentials_unless_public_by_design(route: ApiRoute) -> None:
    method, path, auth, api = route.method, route.path, route.auth, route.api
    assert api == "HttpApi", "every route is on the one HTTP API"
    rule = rule_for(f"{method} {path}")
    assert rule is not None, f"{method} {path} has no access policy (loyalty/auth/policy.py)"
    if _public_by_design(method, path):
        assert auth is None
        assert rule.public
        return
    assert auth is not None, f"{method} {path} accepts requests without credentials"
    assert not rule.public
    expected = "AWS_IAM" if rule.iam else "CustomerJwt" if rule.customer else "StaffJwt"
    assert auth == expected


def test_the_jwt_authorizers_trust_only_their_own_pool_and_clients() -> None:
    auth = TEMPLATE["Resources"]["HttpApi"]["Properties"]["Auth"]
    assert auth["EnableIamAuthorizer"] is True
    staff = auth["Authorizers"]["StaffJwt"]["JwtConfiguration"]
    customer = auth["Authorizers"]["CustomerJwt"]["JwtConfiguration"]
    assert "${StaffUserPool}" in staff["issuer"]["Fn::Sub"]
    assert staff["audience"] == [{"Ref": "StaffConsoleClient"}]
    assert "${CustomerUserPool}" in customer["issuer"]["Fn::Sub"]
    assert customer["audience"] == [{"Ref": "CustomerWebClient"}, {"Ref": "CustomerAppClient"}]


def test_every_policy_entry_is_a_template_route() -> None:
    keys = {f"{r.method} {r.path}" for r in ROUTES}
    assert set(POLICY) - keys == set()


def test_the_readme_role_table_is_the_policy() -> None:
    readme = (ROOT / "README.md").read_text()
    for key in POLICY:
        row = re.search(rf"^\| `{re.escape(key)}` \| (.+) \|$", readme, re.MULTILINE)
        assert row, f"README role table lacks {key}"
        assert row.group(1) == allowed_callers(key)


def _staff(*groups: str, store: str | None = None) -> Principal:
    return Principal(pool=Pool.STAFF, subject="s", groups=frozenset(groups), store_id=store)


def test_roles_admin_iam_customers_and_the_default_deny() -> None:
    authorize("GET /customers/{customer_id}", _staff("store-staff", store="MAD-SOL"))
    authorize("GET /customers/{customer_id}", _staff("admin"))
    authorize("DELETE /customers/{customer_id}", _staff("privacy"))
    authorize("POST /points/rules", _staff("marketing"))
    authorize("PUT /stock/{sku}/config", Principal(pool=Pool.IAM, subject="arn"))
    authorize("GET /me/points", Principal(pool=Pool.CUSTOMER, subject="c"))
    authorize("GET /stock/{sku}", None)
    refused = [
        ("POST /points/rules", _staff("store-staff")),
        ("DELETE /customers/{customer_id}", _staff("store-staff", "marketing")),
        ("GET /kpis/daily/{day}", _staff("privacy")),
        ("GET /customers/{customer_id}", _staff("marketing")),
        ("GET /customers/{customer_id}", _staff()),
        ("GET /customers/{customer_id}", Principal(pool=Pool.CUSTOMER, subject="c")),
        ("GET /customers/{customer_id}", Principal(pool=Pool.IAM, subject="arn")),
        ("PUT /stock/{sku}/config", _staff("admin")),
        ("GET /me/points", _staff("admin")),
        ("GET /not-in-the-policy", _staff("admin")),
    ]
    for key, caller in refused:
        with pytest.raises(Forbidden):
            authorize(key, caller)
    with pytest.raises(Unauthorized):
        authorize("GET /customers/{customer_id}", None)


def test_store_staff_collect_only_at_their_own_store() -> None:
    require_store(_staff("store-staff", store="MAD-SOL"), "MAD-SOL")
    require_store(_staff("admin"), "BCN-01")
    require_store(_staff("store-staff", "admin", store="MAD-SOL"), "BCN-01")
    with pytest.raises(Forbidden) as err:
        require_store(_staff("store-staff", store="MAD-SOL"), "BCN-01")
    assert err.value.code == "other_store"
    with pytest.raises(Forbidden):
        require_store(_staff("store-staff"), "BCN-01")  # a store clerk without a store
