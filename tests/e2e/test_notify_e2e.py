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


def test_reservation_ready_and_back_in_stock_reach_the_customer(local_stack: LocalStack, uid: str) -> None:
    # Given a signed-up customer (push only) and one unit of a SKU in the store
    card = str(int(uid, 16))[-12:].rjust(12, "6")
    app = load_event("webhooks/app_sign_up.json")
    app["event_id"] = f"app-{uid}"
    app["device"]["id"] = f"dev-{uid}"
    app["user"].update(
        email=f"eva.{uid}@gmail.com", loyalty_card=card, timezone=daytime_zone(), push_opt_in=True
    )
    assert local_stack.post_webhook("app", app).status == 202
    sku, store = f"SKU-NTF-{uid}", "MAD-SOL"

    def receive(units: int, n: int) -> None:
        doc = {
            "message_id": f"GRN-{uid}-{n}",
            "type": "receipt",
            "location_id": store,
            "occurred_at": "2026-11-01T08:00:00+00:00",
            "lines": [{"sku": sku, "quantity": units}],
        }
        assert local_stack.post_webhook("stock", doc).status == 202
        local_stack.wait_quiet(timeout=90)

    receive(1, 1)
    customer_id = local_stack.api("GET", f"/customers?card={card}").json()["customer_id"]
    # When she reserves the last unit for click and collect, subscribes to the SKU, and stock arrives
    request = {"customer_id": customer_id, "sku": sku, "quantity": 1, "location_id": store}
    resp = local_stack.api("POST", "/reservations", request, headers={"Idempotency-Key": uid})
    assert resp.status == 201, resp.body
    local_stack.wait_quiet(timeout=90)
    alert = local_stack.api(
        "POST", f"/customers/{customer_id}/stock-alerts", {"sku": sku, "location_id": store}
    )
    assert alert.status == 201, alert.body
    receive(2, 2)
    # Then she got the welcome, "reservation ready" and "back in stock" once each, by push; the
    # reservation's reminder waits for its time
    body = local_stack.api("GET", f"/customers/{customer_id}/notifications").json()
    assert sorted((o["intent"], o["channel"]) for o in body["outbox"]) == [
        ("back_in_stock", "push"),
        ("reservation_ready", "push"),
        ("welcome", "push"),
    ]
    states = {h["intent"]: (h["status"], h.get("reason")) for h in body["history"]}
    assert states["reservation_expiring"] == ("deferred", "reminder")
