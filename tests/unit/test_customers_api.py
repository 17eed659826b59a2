"""Customer API: 360, lookup, edits, timeline, merge reviews, unmerge, erasure; every error answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.template import Resolver as StackResolver
from loyalty.eventlog.store import EventLog
from loyalty.identity.resolve import Resolver
from loyalty.identity.store import IdentityStore
from loyalty.store.table import Table
from tests.support.identity import event
from tests.support.lambdas import LambdaContext, http_api_event, load_function


@pytest.fixture
def api(stack: StackResolver) -> Any:
    return load_function("customers_api")


def call(
    api: Any,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    resource: str | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    raw = None if body is None else json.dumps(body)
    headers = {"Content-Type": "application/json"} if raw else {}
    resp = api.handler(
        http_api_event(method, path, raw, headers, path_parameters=params, query=query, resource=resource),
        LambdaContext(),
    )
    return resp["statusCode"], json.loads(resp["body"]) if resp.get("body") else None


def call_at(api: Any, method: str, resource: str, body: Any = None, **params: str) -> tuple[int, Any]:
    """``call`` on a templated route (``/customers/{customer_id}``), its path filled from ``params``."""
    return call(api, method, resource.format(**params), body, resource=resource, params=params)


def customer(api: Any, cid: str) -> tuple[int, Any]:
    return call(
        api, "GET", f"/customers/{cid}", resource="/customers/{customer_id}", params={"customer_id": cid}
    )


def _ana() -> str:
    cid = (
        Resolver()
        .resolve(
            event(
                ("email", "ana@x.com"),
                ("loyalty_card", "7700"),
                profile={"first_name": "Ana"},
                consents=[("email", True)],
            )
        )
        .customer_id
    )
    assert cid
    return cid


def test_the_360_view_has_profile_identifiers_consents_points_and_interactions(api: Any) -> None:
    cid = _ana()
    Resolver().resolve(event(("loyalty_card", "7700"), channel="pos", minutes=3))
    Table().put(
        {
            "pk": f"CUST#{cid}",
            "sk": "PTS#BALANCE",
            "entity": "points_balance",
            "customer_id": cid,
            "available": 120,
            "pending": 30,
            "debt": 0,
            "lifetime_earned": 150,
            "tier": "silver",
        }
    )
    status, body = customer(api, cid)
    assert status == 200
    assert body["profile"]["first_name"] == "Ana"
    assert {(i["type"], i["channel"]) for i in body["identifiers"]} == {
        ("email", "web"),
        ("loyalty_card", "web"),
    }
    assert body["consents"]["email"]["granted"] is True
    assert body["points"] == {
        "available": 120,
        "pending": 30,
        "debt": 0,
        "lifetime_earned": 150,
        "tier": "silver",
    }
    assert [e["channel"] for e in body["last_interactions"]] == ["pos", "web"]


def test_an_absorbed_id_answers_with_its_survivor(api: Any) -> None:
    cid = _ana()
    other = Resolver().resolve(event(("phone", "612345678"), minutes=1)).customer_id
    Resolver().resolve(event(("phone", "612345678"), ("email", "ana@x.com"), minutes=2))
    assert other
    status, body = customer(api, other)
    assert status == 200
    assert (body["customer_id"], body["requested_id"]) == (cid, other)
    assert body["absorbed_ids"] == [other]
    assert len(body["last_interactions"]) == 3


@pytest.mark.parametrize(
    ("cid", "status", "code"),
    [("c_" + "0" * 32, 404, "customer_not_found"), ("not-an-id", 422, None)],
)
def test_unknown_or_malformed_customer_ids(api: Any, cid: str, status: int, code: str | None) -> None:
    got, body = customer(api, cid)
    assert got == status
    if code:
        assert body["error"]["code"] == code


def test_lookup_by_any_identifier_typed_any_way(api: Any) -> None:
    cid = _ana()
    for query in ({"email": " ANA@x.com"}, {"card": "77-00"}):
        status, body = call(api, "GET", "/customers", query=query)
        assert status == 200
        assert body["customer_id"] == cid


@pytest.mark.parametrize(
    ("query", "status", "code", "field"),
    [
        (None, 400, "one_identifier_required", None),
        ({"email": "a@x.com", "phone": "612345678"}, 400, "one_identifier_required", None),
        ({"phone": "call me"}, 400, "invalid_identifier", "phone"),
        ({"email": "nobody@x.com"}, 404, "customer_not_found", None),
    ],
)
def test_lookup_errors(
    api: Any, query: dict[str, str] | None, status: int, code: str, field: str | None
) -> None:
    _ana()
    got, body = call(api, "GET", "/customers", query=query)
    assert got == status
    assert body["error"]["code"] == code
    assert body["error"].get("field") == field


def test_staff_edits_are_verified_and_win_over_later_unverified_channel_data(api: Any) -> None:
    cid = _ana()
    params = {"customer_id": cid}
    status, body = call(
        api,
        "PATCH",
        f"/customers/{cid}",
        {
            "first_name": "Ana Belén",
            "timezone": "Europe/Madrid",
            "preferred_channel": "sms",
            "consents": {"email": False, "sms": True},
        },
        resource="/customers/{customer_id}",
        params=params,
    )
    assert status == 200
    assert body["profile"]["first_name"] == "Ana Belén"
    assert body["profile"]["preferred_channel"] == "sms"
    assert body["profile"]["field_sources"]["first_name"]["source"] == "staff"
    assert (body["consents"]["email"]["granted"], body["consents"]["sms"]["granted"]) == (False, True)
    # a later unverified web value does not overwrite a staff-verified one
    Resolver().resolve(event(("email", "ana@x.com"), profile={"first_name": "ana"}, minutes=60 * 24 * 400))
    assert customer(api, cid)[1]["profile"]["first_name"] == "Ana Belén"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"locale": "spanish"}, 422, None),
        ({"timezone": "Mars/Olympus_Mons"}, 422, None),
        ({"preferred_channel": "fax"}, 422, None),
        ({"consents": {"fax": True}}, 422, None),
        ({"unknown": 1}, 422, None),
        ({}, 400, "empty_patch"),
    ],
)
def test_patch_validation_errors(api: Any, body: dict[str, Any], status: int, code: str | None) -> None:
    cid = _ana()
    got, answer = call_at(api, "PATCH", "/customers/{customer_id}", body, customer_id=cid)
    assert got == status
    if code:
        assert answer["error"]["code"] == code


def test_patch_of_an_unknown_customer_is_404(api: Any) -> None:
    cid = "c_" + "1" * 32
    got, body = call(
        api,
        "PATCH",
        f"/customers/{cid}",
        {"first_name": "X"},
        resource="/customers/{customer_id}",
        params={"customer_id": cid},
    )
    assert (got, body["error"]["code"]) == (404, "customer_not_found")


def test_timeline_pages_backwards(api: Any) -> None:
    cid = _ana()
    for i in range(1, 5):
        Resolver().resolve(event(("email", "ana@x.com"), minutes=i))
    path, res, params = (
        f"/customers/{cid}/timeline",
        "/customers/{customer_id}/timeline",
        {"customer_id": cid},
    )
    status, first = call(api, "GET", path, query={"limit": "3"}, resource=res, params=params)
    assert status == 200
    assert len(first["entries"]) == 3
    _, second = call(
        api, "GET", path, query={"limit": "3", "before": first["next_before"]}, resource=res, params=params
    )
    assert len(second["entries"]) == 2
    seen = [e["occurred_at"] for e in first["entries"] + second["entries"]]
    assert seen == sorted(seen, reverse=True)
    assert call(api, "GET", path, query={"limit": "0"}, resource=res, params=params)[0] == 422


def _quarantined() -> tuple[str, str, str]:
    a = Resolver().resolve(event(("loyalty_card", "1"), ("email", "a@x.com"))).customer_id
    b = Resolver().resolve(event(("loyalty_card", "2"), ("email", "b@x.com"), minutes=1)).customer_id
    review = Resolver().resolve(event(("email", "a@x.com"), ("email", "b@x.com"), minutes=2)).quarantined
    assert a
    assert b
    assert review
    return a, b, review


def test_staff_approve_a_quarantined_merge(api: Any) -> None:
    a, b, review = _quarantined()
    status, page = call(api, "GET", "/merge-reviews")
    assert status == 200
    assert [r["review_id"] for r in page["reviews"]] == [review]
    res, params = "/merge-reviews/{review_id}", {"review_id": review}
    status, decided = call(
        api, "POST", f"/merge-reviews/{review}", {"decision": "approve"}, resource=res, params=params
    )
    assert status == 200
    assert decided["status"] == "approved"
    assert decided["merge_id"]
    assert customer(api, b)[1]["customer_id"] == a
    # deciding twice is a conflict; the pending list is empty, the approved one lists it
    assert (
        call(api, "POST", f"/merge-reviews/{review}", {"decision": "reject"}, resource=res, params=params)[1][
            "error"
        ]["code"]
        == "review_decided"
    )
    assert call(api, "GET", "/merge-reviews")[1]["reviews"] == []
    assert len(call(api, "GET", "/merge-reviews", query={"status": "approved"})[1]["reviews"]) == 1


def test_a_rejected_review_keeps_the_customers_apart(api: Any) -> None:
    _, b, review = _quarantined()
    res, params = "/merge-reviews/{review_id}", {"review_id": review}
    status, decided = call(
        api, "POST", f"/merge-reviews/{review}", {"decision": "reject"}, resource=res, params=params
    )
    assert (status, decided["status"]) == (200, "rejected")
    again = Resolver().resolve(event(("email", "b@x.com"), ("email", "a@x.com"), minutes=9))
    assert again.quarantined == review
    assert customer(api, b)[1]["customer_id"] == b


@pytest.mark.parametrize(
    ("review_id", "body", "status"),
    [
        ("r_" + "0" * 32, {"decision": "approve"}, 404),
        ("r_" + "0" * 32, {"decision": "maybe"}, 422),
        ("bad", {"decision": "approve"}, 422),
    ],
)
def test_review_decision_errors(api: Any, review_id: str, body: dict[str, Any], status: int) -> None:
    got, _ = call_at(api, "POST", "/merge-reviews/{review_id}", body, review_id=review_id)
    assert got == status


def test_review_listing_errors(api: Any) -> None:
    assert call(api, "GET", "/merge-reviews", query={"status": "lost"})[0] == 422
    got, body = call(api, "GET", "/merge-reviews", query={"cursor": "%%%"})
    assert (got, body["error"]["code"]) == (400, "invalid_cursor")


def test_unmerge_through_the_api(api: Any) -> None:
    cid = _ana()
    other = Resolver().resolve(event(("phone", "612345678"), minutes=1)).customer_id
    Resolver().resolve(event(("phone", "612345678"), ("email", "ana@x.com"), minutes=2))
    assert other
    res = "/customers/{customer_id}/unmerge"
    # the absorbed id is not the one to unmerge
    got, body = call(api, "POST", f"/customers/{other}/unmerge", resource=res, params={"customer_id": other})
    assert (got, body["error"]["code"]) == (409, "not_a_survivor")
    got, body = call(api, "POST", f"/customers/{cid}/unmerge", resource=res, params={"customer_id": cid})
    assert got == 200
    assert body["restored_ids"] == [other]
    assert customer(api, other)[1]["customer_id"] == other
    got, body = call(api, "POST", f"/customers/{cid}/unmerge", resource=res, params={"customer_id": cid})
    assert (got, body["error"]["code"]) == (409, "nothing_to_unmerge")


def test_erasure_frees_identifiers_anonymises_events_and_keeps_an_audit(api: Any) -> None:
    cid = _ana()
    first = event(("email", "ana@x.com"), profile={"first_name": "Ana", "last_name": "García"}, minutes=1)
    Resolver().resolve(first)
    res, params = "/customers/{customer_id}", {"customer_id": cid}
    got, body = call(api, "DELETE", f"/customers/{cid}", resource=res, params=params)
    assert got == 200
    assert body["identifiers_freed"] == 2
    assert body["events_anonymised"] == 2
    # the person is gone: 404, identifiers free, events without personal data, no personal data left
    assert customer(api, cid)[1]["error"]["code"] == "customer_erased"
    assert call(api, "GET", "/customers", query={"email": "ana@x.com"})[0] == 404
    recorded = json.loads(EventLog().get(first.event_id)["data"])
    assert recorded["identifiers"] == []
    assert "first_name" not in json.dumps(recorded["payload"]).replace('"first_name": null', "")
    leftovers = IdentityStore().collection(cid)
    assert [(i["sk"], i["status"]) for i in leftovers] == [("PROFILE", "erased")]
    audit = IdentityStore().erasure_audit(cid)
    assert audit is not None
    assert "ana" not in json.dumps(audit).lower()
    # a new sign-up with the same email is a new customer; erasing again answers the same audit
    assert Resolver().resolve(event(("email", "ana@x.com"), minutes=5)).customer_id != cid
    assert call(api, "DELETE", f"/customers/{cid}", resource=res, params=params) == (200, body)


def test_openapi_document_lists_every_route(api: Any) -> None:
    status, doc = call(api, "GET", "/openapi/customers.json")
    assert status == 200
    assert {
        "/customers",
        "/customers/{customer_id}",
        "/customers/{customer_id}/timeline",
        "/customers/{customer_id}/unmerge",
        "/merge-reviews",
        "/merge-reviews/{review_id}",
    } <= set(doc["paths"])
    assert "404" in doc["paths"]["/customers/{customer_id}"]["get"]["responses"]


def test_an_aws_fault_is_a_503_with_retry_after(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalty.errors import TransientError

    def throttled(*_: Any, **__: Any) -> None:
        raise TransientError("throttled")

    monkeypatch.setattr(IdentityStore, "resolve", throttled)
    resp = api.handler(
        http_api_event(
            "GET",
            "/customers/c_" + "2" * 32,
            resource="/customers/{customer_id}",
            path_parameters={"customer_id": "c_" + "2" * 32},
        ),
        LambdaContext(),
    )
    assert resp["statusCode"] == 503


@pytest.mark.parametrize(
    "sample",
    [
        "customers_get.json",
        "customers_lookup_email.json",
        "customers_patch.json",
        "customers_timeline.json",
        "customers_unmerge.json",
        "customers_delete.json",
        "merge_reviews_list.json",
        "merge_reviews_approve.json",
        "customers_openapi.json",
    ],
)
def test_sample_events_for_sam_local_invoke_reach_their_route(
    api: Any, sample: str, sample_issuer: str
) -> None:
    from tests.support.lambdas import load_event

    resp = api.handler(load_event(f"api/{sample}"), LambdaContext())
    # the sample customer / review do not exist: a domain answer, never a routing or validation error
    assert resp["statusCode"] in {200, 404}, resp["body"]


def test_other_capabilities_timeline_entries_show_in_the_360(api: Any) -> None:
    # Given a notification logged on the customer's timeline by the notification capability
    cid = _ana()
    Table().put(
        {
            "pk": f"CUST#{cid}",
            "sk": "TL#2026-11-02T10:00:00+00:00#notif-m1",
            "entity": "notification_log",
            "customer_id": cid,
            "message_id": "m1",
            "intent": "points_earned",
            "status": "sent",
            "channel": "email",
            "at": "2026-11-02T10:00:00+00:00",
        }
    )
    # Then the 360 lists it with the channel events, newest first
    _, body = customer(api, cid)
    assert [(e["entity"], e["type"]) for e in body["last_interactions"]] == [
        ("notification_log", "points_earned"),
        ("timeline", "customer.updated"),
    ]
