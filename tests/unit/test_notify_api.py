"""GET /customers/{customer_id}/notifications on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devstack.template import Resolver
from loyalty.notify.fanout import Fanout
from loyalty.notify.sender import send
from loyalty.store.table import Table
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, http_api_event, load_function

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def _get(customer_id: str, query: dict[str, str] | None = None) -> dict[str, object]:
    event = http_api_event(
        "GET",
        f"/customers/{customer_id}/notifications",
        path_parameters={"customer_id": customer_id},
        query=query,
        resource="/customers/{customer_id}/notifications",
    )
    return load_function("notifications_api").handler(event, LambdaContext())  # type: ignore[no-any-return]


def test_history_with_reasons_and_the_outbox(stack: Resolver) -> None:
    # Given one message sent on email and one suppressed for lack of SMS consent on another customer
    table = Table()
    fx.seed_customer(table, "c_1", preferred="email")
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    send("c_1", outcome.message_id, "email", now=NOON)
    Fanout().fan_out(fx.tier_change("c_1"), None, now=NOON)
    fx.seed_customer(table, "c_2", granted={})
    Fanout().fan_out(fx.tier_change("c_2"), None, now=NOON)
    # When staff read them
    response = _get("c_1")
    body = json.loads(str(response["body"]))
    # Then the history says what happened to each message, and the outbox shows the email
    assert response["statusCode"] == 200
    assert sorted((h["intent"], h["status"]) for h in body["history"]) == [
        ("points_earned", "sent"),
        ("tier_reached", "queued"),
    ]
    assert [o["content"]["subject"] for o in body["outbox"]] == ["Has ganado 120 puntos"]
    other = json.loads(str(_get("c_2")["body"]))
    assert [(h["intent"], h["reason"]) for h in other["history"]] == [("tier_reached", "no_consent")]
    assert other["outbox"] == []


def test_bad_input_is_a_clear_error(stack: Resolver) -> None:
    assert _get("not-a-customer")["statusCode"] == 422
    assert _get("c_1", {"limit": "0"})["statusCode"] == 422


def test_the_sample_event_for_sam_local_invoke(stack: Resolver, sample_issuer: str) -> None:
    from tests.support.lambdas import load_event

    response = load_function("notifications_api").handler(
        load_event("api/customer_notifications.json"), LambdaContext()
    )
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "customer_id": "c_0123456789abcdef0123456789abcdef",
        "history": [],
        "outbox": [],
    }
