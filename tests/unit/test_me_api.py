"""Customer self-service (/me) over HTTP API 2.0 events carrying verified JWT claims."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.errors import DomainError
from loyalty.eventlog.store import EventLog
from loyalty.identity.resolve import Resolver as IdentityResolver
from loyalty.identity.store import IdentityStore
from loyalty.models.events import Channel
from loyalty.points.service import PointsService
from loyalty.selfservice.service import SelfService
from loyalty.selfservice.signin import CustomerFinder, Me, customer_principal
from loyalty.selfservice.views import MeReservationRequest
from tests.support.identity import event as identity_event
from tests.support.lambdas import LambdaContext, load_event, load_function
from tests.support.points import order_event
from tests.support.races import race
from tests.support.stock import adjusted, apply_message, at, figures, message

STAFF_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Staff"
SKU = "SKU-JACKET-M"
OTHER_SKU = "SKU-SCARF"
STORE = "MAD-SOL"
EVENTS = [
    "me_get",
    "me_preferences",
    "me_points",
    "me_ledger",
    "me_redeem",
    "me_cancel_redemption",
    "me_reservations",
    "me_reserve",
    "me_cancel_reservation",
    "me_stock_alert",
]


@pytest.fixture
def api(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> Any:
    from loyalty.settings import get_settings

    monkeypatch.setenv("STAFF_ISSUER", STAFF_ISSUER)
    get_settings.cache_clear()
    for sku in (SKU, OTHER_SKU):
        apply_message(message(adjusted(sku, STORE, 20, at(0))))
    return load_function("me_api")


def claims(
    sub: str = "sub-ana",
    email: str | None = "ana@correo-ejemplo.es",
    email_verified: bool = True,
    phone: str | None = None,
    phone_verified: bool = False,
    iss: str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Customers",
) -> dict[str, str]:
    out = {"sub": sub, "iss": iss, "aud": "webshop", "token_use": "id"}
    if email:
        out |= {"email": email, "email_verified": str(email_verified).lower()}
    if phone:
        out |= {"phone_number": phone, "phone_number_verified": str(phone_verified).lower()}
    return out


def call(
    api: Any,
    name: str,
    *,
    who: dict[str, str] | None,
    body: Any = None,
    path: str | None = None,
    headers: dict[str, str] | None = None,
    query: str | None = None,
) -> tuple[int, Any]:
    """Answer ``events/api/<name>.json`` with the given caller (None: no claims), body, path, query."""
    event = copy.deepcopy(load_event(f"api/{name}.json"))
    if who is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"]["jwt"]["claims"] = who
    if body is not None:
        event["body"] = json.dumps(body)
    if path is not None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {next(iter(event["pathParameters"])): path.rsplit("/", 1)[1]}
    if headers is not None:
        event["headers"] = {k: v for k, v in event["headers"].items() if k != "idempotency-key"} | headers
    if query is not None:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&")) if query else None
    resp = api.handler(event, LambdaContext())
    return resp["statusCode"], json.loads(resp["body"]) if resp.get("body") else None


def me(api: Any, who: dict[str, str]) -> str:
    status, body = call(api, "me_get", who=who)
    assert status == 200, body
    return str(body["customer_id"])


def reserve(
    api: Any, who: dict[str, str], key: str, quantity: int = 1, sku: str = SKU
) -> tuple[int, dict[str, Any]]:
    body = {"sku": sku, "quantity": quantity, "location_id": STORE}
    return call(api, "me_reserve", who=who, body=body, headers={"idempotency-key": key})


def available(customer_id: str, points: int) -> None:
    """``points`` available points: a store sale old enough for its return window to have passed."""
    occurred = datetime.now(UTC) - timedelta(days=20)
    event = order_event(
        customer_id, f"P-{customer_id}", [("SKU", 1, str(points))], channel=Channel.POS, occurred_at=occurred
    )
    svc = PointsService()
    svc.apply(event)
    assert svc.points(customer_id)["available"] == points


# ---------------------------------------------------------------------- who is calling
@pytest.mark.parametrize("name", EVENTS)
def test_no_claims_is_refused_with_401_on_every_route(api: Any, name: str) -> None:
    status, body = call(api, name, who=None)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert IdentityStore().table.get("CUST#x", "PROFILE") is None


@pytest.mark.parametrize("name", EVENTS)
def test_the_sample_events_are_answered_with_no_5xx(api: Any, name: str) -> None:
    status, _ = call(
        api, name, who=load_event(f"api/{name}.json")["requestContext"]["authorizer"]["jwt"]["claims"]
    )
    assert status < 500


def test_a_staff_token_is_not_a_customer(api: Any) -> None:
    status, body = call(api, "me_get", who=claims(iss=STAFF_ISSUER))
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_a_machine_caller_is_not_a_customer(api: Any) -> None:
    event = load_event("api/me_get.json")
    event["requestContext"]["authorizer"] = {"iam": {"userArn": "arn:aws:iam::123456789012:user/erp"}}
    resp = api.handler(event, LambdaContext())
    assert resp["statusCode"] == 401


def test_a_sign_in_without_a_verified_email_or_phone_is_403(api: Any) -> None:
    status, body = call(api, "me_get", who=claims(email_verified=False, phone="+34600111222"))
    assert (status, body["error"]["code"]) == (403, "verification_required")
    # a verified but blocklisted address (a shared placeholder) never links anyone either
    status, body = call(api, "me_get", who=claims(email="noreply@correo-ejemplo.es"))
    assert (status, body["error"]["code"]) == (403, "verification_required")


# ---------------------------------------------------------------------- profile and preferences
def test_first_sign_in_creates_the_customer_and_shows_the_profile(api: Any) -> None:
    status, body = call(api, "me_get", who=claims())
    assert status == 200
    assert body["identifiers"] == [{"type": "email", "value": "ana@correo-ejemplo.es"}]
    assert body["consents"] == {}
    assert "field_sources" not in body["profile"]
    assert me(api, claims()) == body["customer_id"]


def test_preferences_are_a_canonical_event_applied_to_the_profile(api: Any) -> None:
    cid = me(api, claims())
    change = {"consents": {"email": True, "sms": False}, "language": "es-ES"}
    status, body = call(api, "me_preferences", who=claims(), body=change, headers={"idempotency-key": "p-1"})
    assert status == 200
    assert body["profile"]["locale"] == "es-ES"
    assert {ch: c["granted"] for ch, c in body["consents"].items()} == {"email": True, "sms": False}
    # recorded in the event log like a channel's event, and attributed to the customer
    profile = IdentityStore().profile(cid)
    assert profile is not None
    assert profile["consents"]["email"]["source"] == "selfservice"
    assert profile["field_sources"]["locale"]["verified"] is True
    day = datetime.now(UTC).date()
    events, _ = EventLog().of_day(day)
    updates = [e for e in events if e.type.value == "customer.updated"]
    assert len(updates) == 1
    assert EventLog().get(updates[0].event_id)["customer_id"] == cid


def test_preferences_replayed_with_the_same_key_are_recorded_once(api: Any) -> None:
    me(api, claims())
    change = {"consents": {"push": True}}
    for _ in range(2):
        status, _body = call(
            api, "me_preferences", who=claims(), body=change, headers={"idempotency-key": "k"}
        )
        assert status == 200
    events, _ = EventLog().of_day(datetime.now(UTC).date())
    assert [e.type.value for e in events].count("consent.changed") == 1
    status, body = call(
        api,
        "me_preferences",
        who=claims(),
        body={"consents": {"push": False}},
        headers={"idempotency-key": "k"},
    )
    assert (status, body["error"]["code"]) == (409, "idempotency_key_reused")


def test_a_later_opt_out_wins_over_an_earlier_opt_in(api: Any) -> None:
    me(api, claims())
    call(api, "me_preferences", who=claims(), body={"consents": {"email": True}}, headers={})
    status, body = call(api, "me_preferences", who=claims(), body={"consents": {"email": False}}, headers={})
    assert status == 200
    assert body["consents"]["email"]["granted"] is False


def test_quiet_hours_time_zone_and_frequency_are_mine_to_set(api: Any) -> None:
    cid = me(api, claims())
    # Given the stage's defaults
    status, body = call(api, "me_get", who=claims())
    assert body["messages"] == {
        "quiet_hours": None,
        "frequency": "as_it_happens",
        "marketing_weekly_max": None,
    }
    # When I choose quiet hours in my zone, a weekly digest and at most 2 marketing messages a week
    change = {
        "quiet_hours": {"start": "22:30", "end": "07:30"},
        "timezone": "Atlantic/Canary",
        "frequency": "weekly",
        "marketing_weekly_max": 2,
    }
    for _ in range(2):  # a retry states the same thing again
        status, body = call(
            api, "me_preferences", who=claims(), body=change, headers={"idempotency-key": "q"}
        )
        assert status == 200, body
    # Then /me shows them, the zone is the profile's (through the event log), once
    assert body["messages"] == {
        "quiet_hours": {"start": "22:30", "end": "07:30"},
        "frequency": "weekly",
        "marketing_weekly_max": 2,
    }
    assert body["profile"]["timezone"] == "Atlantic/Canary"
    events, _ = EventLog().of_day(datetime.now(UTC).date())
    assert [e.type.value for e in events].count("customer.updated") == 1
    # And the fan-out reads the same statement
    from loyalty.notify.store import NotifyStore

    recipient, _ = NotifyStore().recipient(cid, "2026-W48")
    assert recipient is not None
    assert (recipient.timezone, recipient.prefs.quiet_start, recipient.prefs.frequency) == (
        "Atlantic/Canary",
        "22:30",
        "weekly",
    )
    # When I go back to the stage's quiet hours, the rest stays
    status, body = call(api, "me_preferences", who=claims(), body={"quiet_hours": None}, headers={})
    assert body["messages"]["quiet_hours"] is None
    assert body["messages"]["frequency"] == "weekly"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({}, 400, "empty_patch"),
        ({"language": "Spanish"}, 422, "validation_error"),
        ({"consents": {"fax": True}}, 422, "validation_error"),
        ({"customer_id": "c_someone_else"}, 422, "validation_error"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, 422, "validation_error"),
        ({"quiet_hours": {"start": "22:00"}}, 422, "validation_error"),
        ({"timezone": "Mars/Olympus_Mons"}, 422, "validation_error"),
        ({"frequency": "hourly"}, 422, "validation_error"),
        ({"marketing_weekly_max": -1}, 422, "validation_error"),
    ],
)
def test_bad_preferences_are_4xx(api: Any, change: dict[str, Any], status: int, code: str) -> None:
    got, body = call(api, "me_preferences", who=claims(), body=change)
    assert got == status, body
    assert body.get("error", {}).get("code", "validation_error") == code


# ---------------------------------------------------------------------- points
def test_points_ledger_and_redemptions_of_my_own(api: Any) -> None:
    cid = me(api, claims())
    available(cid, 100)
    status, body = call(api, "me_points", who=claims())
    assert (status, body["available"], body["customer_id"]) == (200, 100, cid)
    assert "requested_id" not in body
    status, first = call(
        api, "me_redeem", who=claims(), body={"points": 30}, headers={"idempotency-key": "r1"}
    )
    assert (status, first["points"], first["status"]) == (201, 30, "redeemed")
    status, again = call(
        api, "me_redeem", who=claims(), body={"points": 30}, headers={"idempotency-key": "r1"}
    )
    assert (status, again["redemption_id"]) == (200, first["redemption_id"])
    assert PointsService().points(cid)["available"] == 70
    status, ledger = call(api, "me_ledger", who=claims(), query="limit=1")
    assert status == 200
    assert [e["kind"] for e in ledger["entries"]] == ["redeem"]
    status, page2 = call(api, "me_ledger", who=claims(), query=f"limit=1&cursor={ledger['next_cursor']}")
    assert (status, len(page2["entries"])) == (200, 1)
    rid = first["redemption_id"]
    status, cancelled = call(api, "me_cancel_redemption", who=claims(), path=f"/me/redemptions/{rid}")
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert PointsService().points(cid)["available"] == 100


def test_redemption_errors(api: Any) -> None:
    cid = me(api, claims())
    available(cid, 10)
    status, body = call(api, "me_redeem", who=claims(), body={"points": 5}, headers={})
    assert (status, body["error"]["field"]) == (400, "Idempotency-Key")
    status, body = call(api, "me_redeem", who=claims(), body={"points": 50}, headers={"idempotency-key": "x"})
    assert status in {400, 409, 422}, body
    status, _ = call(api, "me_redeem", who=claims(), body={"points": 0}, headers={"idempotency-key": "y"})
    assert status == 422


def test_another_customers_redemption_is_not_found(api: Any) -> None:
    ana, bea = claims(), claims(sub="sub-bea", email="bea@correo-ejemplo.es")
    available(me(api, ana), 50)
    _, theirs = call(api, "me_redeem", who=ana, body={"points": 20}, headers={"idempotency-key": "a"})
    me(api, bea)
    path = f"/me/redemptions/{theirs['redemption_id']}"
    status, body = call(api, "me_cancel_redemption", who=bea, path=path)
    assert (status, body["error"]["code"]) == (404, "redemption_not_found")
    status, body = call(
        api, "me_cancel_redemption", who=bea, path="/me/redemptions/r_000000000000000000000000"
    )
    assert (status, body["error"]["code"]) == (404, "redemption_not_found")


def test_a_ledger_cursor_of_another_customer_is_refused(api: Any) -> None:
    ana, bea = claims(), claims(sub="sub-bea", email="bea@correo-ejemplo.es")
    ana_id = me(api, ana)
    me(api, bea)
    import base64

    forged = base64.urlsafe_b64encode(json.dumps({"pk": f"CUST#{ana_id}", "sk": "PTS#E#9"}).encode()).decode()
    status, body = call(api, "me_ledger", who=bea, query=f"cursor={forged}")
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")
    status, body = call(api, "me_ledger", who=bea, query="cursor=%%%not-base64")
    assert status == 400


# ---------------------------------------------------------------------- reservations
def test_reserve_list_replay_and_cancel_my_own(api: Any) -> None:
    cid = me(api, claims())
    status, first = reserve(api, claims(), "k-1", quantity=2)
    assert (status, first["customer_id"], first["status"]) == (201, cid, "ready")
    status, again = reserve(api, claims(), "k-1", quantity=2)
    assert (status, again["reservation_id"]) == (200, first["reservation_id"])
    assert figures(SKU, STORE).reserved == 2
    status, listed = call(api, "me_reservations", who=claims())
    assert status == 200
    assert [r["reservation_id"] for r in listed["reservations"]] == [first["reservation_id"]]
    path = f"/me/reservations/{first['reservation_id']}"
    status, released = call(api, "me_cancel_reservation", who=claims(), path=path)
    assert (status, released["status"]) == (200, "released")
    assert figures(SKU, STORE).reserved == 0
    status, body = reserve(api, claims(), "k-2", quantity=1)
    assert status == 201
    status, body = call(
        api, "me_reserve", who=claims(), body={"sku": SKU, "quantity": 1, "location_id": STORE}, headers={}
    )
    assert (status, body["error"]["field"]) == (400, "Idempotency-Key")


def test_another_customers_reservation_is_not_found_and_stays_held(api: Any) -> None:
    ana, bea = claims(), claims(sub="sub-bea", email="bea@correo-ejemplo.es")
    me(api, ana)
    _, theirs = reserve(api, ana, "a-1")
    me(api, bea)
    status, body = call(
        api, "me_cancel_reservation", who=bea, path=f"/me/reservations/{theirs['reservation_id']}"
    )
    assert (status, body["error"]["code"]) == (404, "reservation_not_found")
    status, body = call(api, "me_cancel_reservation", who=bea, path="/me/reservations/res_nope")
    assert (status, body["error"]["code"]) == (404, "reservation_not_found")
    assert figures(SKU, STORE).reserved == 1
    assert call(api, "me_reservations", who=bea)[1]["reservations"] == []


def test_units_per_sku_cap(api: Any) -> None:
    me(api, claims())
    status, body = reserve(api, claims(), "big", quantity=4)
    assert (status, body["error"]["code"]) == (422, "units_per_sku_cap")
    assert reserve(api, claims(), "a", quantity=2)[0] == 201
    status, body = reserve(api, claims(), "b", quantity=2)
    assert (status, body["error"]["code"]) == (409, "units_per_sku_cap")
    assert reserve(api, claims(), "c", quantity=1)[0] == 201
    assert reserve(api, claims(), "d", quantity=3, sku=OTHER_SKU)[0] == 201  # another SKU has its own
    assert figures(SKU, STORE).reserved == 3


def test_active_reservations_cap_and_a_cancel_makes_room(api: Any) -> None:
    me(api, claims())
    made = []
    for i in range(5):
        status, body = reserve(api, claims(), f"k{i}", sku=SKU if i < 3 else OTHER_SKU)
        assert status == 201, body
        made.append(body["reservation_id"])
    status, body = reserve(api, claims(), "k5", sku=OTHER_SKU)
    assert (status, body["error"]["code"]) == (409, "active_reservations_cap")
    assert call(api, "me_cancel_reservation", who=claims(), path=f"/me/reservations/{made[0]}")[0] == 200
    assert reserve(api, claims(), "k6", sku=OTHER_SKU)[0] == 201


def _signed_in(who: dict[str, str]) -> Me:
    return CustomerFinder().find(customer_principal(_event_with(who), STAFF_ISSUER))


def _event_with(who: dict[str, str]) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(load_event("api/me_get.json"))
    event["requestContext"]["authorizer"]["jwt"]["claims"] = who
    return event


def _outcomes(results: list[Any]) -> list[str]:
    """``created`` / the error code of each racer (a Lambda container serves one request at a time,
    so racing requests are racing containers: each thread calls the use case, not one handler)."""
    out = []
    for result in results:
        if isinstance(result, DomainError):
            out.append(result.code)
        else:
            assert isinstance(result, tuple), result
            out.append("created" if result[1] else "replayed")
    return sorted(out)


def test_racing_reservations_never_exceed_the_active_cap(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalty.settings import get_settings

    monkeypatch.setenv("RESERVATION_CAP_UNITS_PER_SKU", "100")
    get_settings.cache_clear()
    mine = _signed_in(claims())
    request = MeReservationRequest(sku=SKU, quantity=1, location_id=STORE)
    results = race(8, lambda i: SelfService().reserve(mine, request, f"race-{i}"))
    assert _outcomes(results) == ["active_reservations_cap"] * 3 + ["created"] * 5
    assert figures(SKU, STORE).reserved == 5
    assert len(call(api, "me_reservations", who=claims())[1]["reservations"]) == 5


def test_racing_reservations_never_exceed_the_units_cap(api: Any) -> None:
    mine = _signed_in(claims())
    request = MeReservationRequest(sku=SKU, quantity=2, location_id=STORE)
    results = race(4, lambda i: SelfService().reserve(mine, request, f"units-{i}"))
    assert _outcomes(results) == ["created"] + ["units_per_sku_cap"] * 3
    assert figures(SKU, STORE).reserved == 2


def test_racing_retries_of_one_reservation_create_it_once(api: Any) -> None:
    mine = _signed_in(claims())
    request = MeReservationRequest(sku=SKU, quantity=1, location_id=STORE)
    results = race(4, lambda i: SelfService().reserve(mine, request, "same-key"))
    assert _outcomes(results) == ["created"] + ["replayed"] * 3
    assert figures(SKU, STORE).reserved == 1


# ---------------------------------------------------------------------- alerts and staff listing
def test_stock_alert_for_me(api: Any) -> None:
    cid = me(api, claims())
    status, body = call(api, "me_stock_alert", who=claims(), body={"sku": SKU, "location_id": STORE})
    assert (status, body["customer_id"], body["sku"]) == (201, cid, SKU)


def test_staff_list_a_customers_reservations(api: Any) -> None:
    from tests.support.lambdas import http_api_event

    cid = me(api, claims())
    _, made = reserve(api, claims(), "staff-view")
    stock_api = load_function("stock_api")
    resource = "/customers/{customer_id}/reservations"
    event = http_api_event(
        "GET",
        f"/customers/{cid}/reservations",
        path_parameters={"customer_id": cid},
        resource=resource,
        role="store-staff",
    )
    resp = stock_api.handler(event, LambdaContext())
    assert resp["statusCode"] == 200
    assert [r["reservation_id"] for r in json.loads(resp["body"])["reservations"]] == [made["reservation_id"]]
    event = http_api_event(
        "GET",
        "/customers/c_nobody/reservations",
        path_parameters={"customer_id": "c_nobody"},
        resource=resource,
        role="store-staff",
    )
    assert stock_api.handler(event, LambdaContext())["statusCode"] == 404


def test_reservations_of_absorbed_customers_follow_the_merge(api: Any) -> None:
    # Given Ana signed in with her email and reserved; her phone belonged to another customer
    me(api, claims())
    _, mine = reserve(api, claims(), "before-merge")
    other = IdentityResolver().resolve(identity_event(("phone", "+34600111222")))
    assert other.customer_id is not None
    # When she verifies that phone, her sign-in links both: the same resolution merges them
    both = claims(phone="+34600111222", phone_verified=True)
    survivor = me(api, both)
    profile = IdentityStore().profile(survivor)
    assert profile is not None
    assert len(profile.get("absorbed_ids") or []) == 1
    # Then the reservation is still hers, whichever id it was made under
    listed = call(api, "me_reservations", who=both)[1]["reservations"]
    assert [r["reservation_id"] for r in listed] == [mine["reservation_id"]]
    path = f"/me/reservations/{mine['reservation_id']}"
    assert call(api, "me_cancel_reservation", who=both, path=path)[0] == 200
