"""End to end: a new customer gets exactly one welcome, on the one channel they consented to."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from devstack.stack import LocalStack
from tests.support.lambdas import load_event

pytestmark = pytest.mark.e2e

ZONES = ("Europe/Madrid", "America/Mexico_City", "Asia/Tokyo", "America/Los_Angeles", "Asia/Kolkata", "UTC")


def daytime_zone() -> str:
    """A time zone where it is daytime now (outside quiet hours), so the message is not deferred."""
    now = datetime.now(UTC)
    return next(z for z in ZONES if 10 <= now.astimezone(ZoneInfo(z)).hour < 19)


def test_sign_up_welcome_on_the_consented_channel_only(local_stack: LocalStack, uid: str) -> None:
    # Given an app sign-up that opts in to push only (it also gives an email address)
    app = load_event("webhooks/app_sign_up.json")
    app["event_id"] = f"app-{uid}"
    app["device"]["id"] = f"dev-{uid}"
    card = str(int(uid, 16))[-12:].rjust(12, "5")
    app["user"].update(
        email=f"ana.{uid}@gmail.com",
        loyalty_card=card,
        timezone=daytime_zone(),
        push_opt_in=True,
    )
    # When it flows through ingest, identity (a new profile) and the notification fan-out
    assert local_stack.post_webhook("app", app).status == 202
    local_stack.wait_quiet(timeout=90)
    customer = local_stack.api("GET", f"/customers?card={card}")
    assert customer.status == 200, customer.body
    customer_id = customer.json()["customer_id"]
    assert "email" in {i["type"] for i in customer.json()["identifiers"]}  # reachable by email, not consented
    notes = local_stack.api("GET", f"/customers/{customer_id}/notifications")
    assert notes.status == 200, notes.body
    body = notes.json()
    # Then exactly one welcome was sent, by push (the only consented channel), in Spanish
    assert [(o["intent"], o["channel"]) for o in body["outbox"]] == [("welcome", "push")]
    assert body["outbox"][0]["content"]["title"] == "Bienvenido/a"
    assert [(h["intent"], h["status"]) for h in body["history"]] == [("welcome", "sent")]
    # And a replayed delivery of the same webhook changes nothing
    assert local_stack.post_webhook("app", app).status == 202
    local_stack.wait_quiet(timeout=90)
    again = local_stack.api("GET", f"/customers/{customer_id}/notifications").json()
    assert len(again["outbox"]) == 1
