"""Who may call which route: one table, applied to every API function by ``loyalty.http``.

API Gateway (or the local front door) has already verified the credentials of a protected route
(401 when they are missing, forged, expired or from another pool); this decides whether the
verified caller may use the route (403 ``forbidden`` when not). Deny by default: a route key
missing from the table answers 403 to everyone, so a new route cannot ship open by accident.

Keys are HTTP API route keys (``"GET /customers/{customer_id}"``), exactly the template's paths.
Admin holds every staff role. Store staff act on reservations only at their own store
(``custom:store_id``), which ``require_store`` checks where the store is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyalty.auth.principal import Pool, Principal, Role
from loyalty.errors import Forbidden, Unauthorized
from loyalty.settings import get_settings

STAFF = frozenset(Role)
CUSTOMER_360 = frozenset({Role.STORE_STAFF, Role.PRIVACY})
ADMIN_ONLY: frozenset[Role] = frozenset()


@dataclass(frozen=True)
class Rule:
    """Who may call a route: staff ``roles`` (admin always), machine callers, customers, anyone."""

    roles: frozenset[Role] = ADMIN_ONLY
    iam: bool = False  # machine callers signed with SigV4 (back office, ERP)
    customer: bool = False  # a signed-in customer (self-service; the service scopes to the caller)
    public: bool = False  # no credentials (signed webhooks, stock reads, signed links)


#: Routes open without credentials: their own proof (a webhook signature, a signed link) or none
#: needed (stock availability). Paths starting with one of these prefixes (any method) are public.
PUBLIC_PREFIXES: tuple[str, ...] = ("/webhooks/", "/unsubscribe", "/preferences")
#: Customer self-service routes (issue 12 item 2): any path under these prefixes, customer pool.
CUSTOMER_PREFIXES: tuple[str, ...] = ("/me",)

MARKETING = frozenset({Role.MARKETING})
CUSTOMER_VIEWS = ("timeline", "points", "ledger", "notifications", "reservations")
PRIVACY = frozenset({Role.PRIVACY})

POLICY: dict[str, Rule] = {
    # stock (public reads; the ERP configures SKUs)
    "GET /stock/{sku}": Rule(public=True),
    "GET /stock": Rule(public=True),
    "PUT /stock/{sku}/config": Rule(iam=True),
    # click and collect (customers reserve through /me; staff act here)
    "GET /reservations/{reservation_id}": Rule(roles=CUSTOMER_360),
    "POST /reservations/{reservation_id}/collect": Rule(roles=frozenset({Role.STORE_STAFF})),
    # customer 360: read by store staff and privacy officers; rectification and erasure by privacy
    **dict.fromkeys(
        [
            "GET /customers",
            "GET /customers/{customer_id}",
            *(f"GET /customers/{{customer_id}}/{view}" for view in CUSTOMER_VIEWS),
        ],
        Rule(roles=CUSTOMER_360),
    ),
    "PATCH /customers/{customer_id}": Rule(roles=PRIVACY),  # rectification
    "DELETE /customers/{customer_id}": Rule(roles=PRIVACY),  # erasure
    # admin only: staff reservations and alerts, merges, redemptions on a customer's behalf
    **dict.fromkeys(
        [
            "POST /reservations",
            "DELETE /reservations/{reservation_id}",
            "POST /customers/{customer_id}/stock-alerts",
            "POST /customers/{customer_id}/unmerge",
            "GET /merge-reviews",
            "POST /merge-reviews/{review_id}",
            "POST /customers/{customer_id}/redemptions",
            "DELETE /customers/{customer_id}/redemptions/{redemption_id}",
        ],
        Rule(),
    ),
    # marketing: points rules, templates, KPIs
    **dict.fromkeys(
        [
            "GET /points/rules",
            "POST /points/rules",
            "POST /points/rules/{rule_id}/deactivate",
            "GET /templates",
            "POST /templates/preview",
            "PUT /templates/{intent}/{channel}/{lang}",
            "GET /kpis/daily",
            "GET /kpis/daily/{day}",
        ],
        Rule(roles=MARKETING),
    ),
    # each API's OpenAPI document, for any staff member
    **{
        f"GET /openapi/{api}.json": Rule(roles=STAFF)
        for api in ("customers", "points", "stock", "kpis", "notifications", "templates")
    },
}


def rule_for(route_key: str) -> Rule | None:
    """The rule of an HTTP API route key (``"GET /path"``), or None (deny)."""
    if route_key in POLICY:
        return POLICY[route_key]
    _, _, path = route_key.partition(" ")
    if path.startswith(PUBLIC_PREFIXES):
        return Rule(public=True)
    if any(path == p or path.startswith(p + "/") for p in CUSTOMER_PREFIXES):
        return Rule(customer=True)
    return None


def authorize(route_key: str, principal: Principal | None) -> None:
    """Raise ``Unauthorized`` (no verified caller on a protected route) or ``Forbidden``."""
    rule = rule_for(route_key)
    if rule is None:
        raise Forbidden(f"no access policy for {route_key}")
    if rule.public:
        return
    if principal is None:
        raise Unauthorized("credentials required")
    allowed = {
        Pool.IAM: rule.iam,
        Pool.CUSTOMER: rule.customer,
        # a machine or self-service route is not a staff route, whatever the staff member's role
        Pool.STAFF: not (rule.iam or rule.customer) and principal.has_role(*rule.roles),
    }[principal.pool]
    if not allowed:
        raise Forbidden(f"not allowed to call {route_key}")


def require_store(principal: Principal | None, store_id: str) -> None:
    """Store staff (unless also admin) act only at their own store."""
    if principal is None or principal.pool is not Pool.STAFF or Role.ADMIN in principal.roles:
        return
    if Role.STORE_STAFF in principal.roles and principal.store_id != store_id:
        raise Forbidden("this reservation is for another store", code="other_store")


def allowed_callers(route_key: str) -> str:
    """Who may call a route, in words (the README's role table)."""
    rule = rule_for(route_key)
    if rule is None:
        return "nobody (no policy)"
    if rule.public:
        return "anyone"
    who = [r.value for r in Role if r is Role.ADMIN or r in rule.roles]
    if rule.customer:
        who.append("customer")
    if rule.iam:
        who = ["IAM (machine)"]
    return ", ".join(who)


def staff_issuer() -> str:
    """The staff pool's issuer (``STAFF_ISSUER``); an API function without it fails at once."""
    value = get_settings().staff_issuer
    if not value:
        raise RuntimeError("STAFF_ISSUER is not set: the API cannot tell staff from customers")
    return value
