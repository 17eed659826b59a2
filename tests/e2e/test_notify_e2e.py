"""End to end: a new customer gets exactly one welcome, on the one channel they consented to."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devstack.sign_events import provider_headers
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
        """The WMS's goods receipt (events/webhooks/stock_receipt.json) of ``units`` of the SKU."""
        doc = load_event("webhooks/stock_receipt.json") | {"message_id": f"GRN-{uid}-{n}"}
        doc |= {"location_id": store, "lines": [{"sku": sku, "quantity": units}]}
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


# -- messages customers control (issue 15) ------------------------------------------------------------
def _sign_up(local_stack: LocalStack, uid: str, *, push: bool, phone: str | None = None) -> tuple[str, str]:
    """An app sign-up in a daytime zone, then an email subscription: (customer id, email)."""
    address = f"marta.{uid}@correo.es"
    card = str(int(uid, 16))[-12:].rjust(12, "4")
    app = load_event("webhooks/app_sign_up.json")
    app["event_id"] = f"app-{uid}"
    app["device"]["id"] = f"dev-{uid}"
    app["user"].update(email=address, loyalty_card=card, timezone=daytime_zone(), push_opt_in=push)
    if phone:
        app["user"]["phone"] = phone
    assert local_stack.post_webhook("app", app).status == 202
    local_stack.wait_quiet(timeout=90)
    subscribe = [
        {
            "sg_event_id": f"sg-{uid}-sub",
            "event": "subscribe",
            "email": address,
            "timestamp": int(datetime.now(UTC).timestamp()),
        }
    ]
    assert local_stack.post_webhook("email", subscribe).status == 202
    local_stack.wait_quiet(timeout=90)
    found = local_stack.api("GET", f"/customers?card={card}")
    assert found.status == 200, found.body
    return str(found.json()["customer_id"]), address


def _back_in_stock(local_stack: LocalStack, uid: str, sku: str, round_: int) -> None:
    """The SKU runs out at the store, then arrives again: one back_in_stock signal."""
    base = datetime.now(UTC)
    count = {
        "message_id": f"CNT-{uid}-{round_}",
        "type": "count",
        "location_id": "MAD-SOL",
        "counted_at": base.isoformat(),
        "lines": [{"sku": sku, "quantity": 0}],
    }
    assert local_stack.post_webhook("stock", count).status == 202
    local_stack.wait_quiet(timeout=90)
    receipt = {
        "message_id": f"GRN-{uid}-{round_}",
        "type": "receipt",
        "location_id": "MAD-SOL",
        "occurred_at": (base + timedelta(seconds=1)).isoformat(),
        "lines": [{"sku": sku, "quantity": 2}],
    }
    assert local_stack.post_webhook("stock", receipt).status == 202
    local_stack.wait_quiet(timeout=90)


def _subscribe_alert(local_stack: LocalStack, customer_id: str, sku: str) -> None:
    alert = local_stack.api(
        "POST", f"/customers/{customer_id}/stock-alerts", {"sku": sku, "location_id": "MAD-SOL"}
    )
    assert alert.status == 201, alert.body


def _alerted(local_stack: LocalStack, uid: str, customer_id: str, sku: str) -> dict[str, Any]:
    """Subscribe the customer to ``sku`` and bring it back in stock; then her notifications (history
    and outbox, as ``GET /customers/{id}/notifications`` answers)."""
    _back_in_stock(local_stack, uid, sku, 1)
    _subscribe_alert(local_stack, customer_id, sku)
    _back_in_stock(local_stack, uid, sku, 2)
    body: dict[str, Any] = local_stack.api("GET", f"/customers/{customer_id}/notifications").json()
    return body


#: the SNS topic each provider publishes to (template: SES event destination, End User Messaging)
TOPICS = {
    "message_feedback_ses_bounce": "NotifySesEventsTopic",
    "message_feedback_ses_complaint": "NotifySesEventsTopic",
    "message_feedback_inbound_sms": "NotifyInboundSmsTopic",
}


def _feedback(local_stack: LocalStack, name: str, **changes: str) -> None:
    """Publish a provider's documented notification (an events/ fixture's SNS ``Message``) to the
    template's topic, as SES / End User Messaging do; SNS delivers it to the feedback queue."""
    text = json.loads(load_event(f"sqs/{name}.json")["Records"][0]["body"])["Message"]
    for old, new in changes.items():
        text = text.replace(old, new)
    assert local_stack.resolver is not None
    topic = local_stack.resolver.refs[TOPICS[name]]
    local_stack.client("sns").publish(TopicArn=topic, Message=text)
    local_stack.wait_quiet(timeout=90)


def test_one_click_unsubscribe_from_the_raw_email_suppresses_the_next_marketing_message(
    local_stack: LocalStack, uid: str
) -> None:
    # Given a customer who gets email (and not push) and waits for a SKU to come back
    customer_id, address = _sign_up(local_stack, uid, push=False)
    sku = f"SKU-UNS-{uid}"
    # When it comes back, she gets a marketing email
    body = _alerted(local_stack, uid, customer_id, sku)
    (sent,) = [o for o in body["outbox"] if o["intent"] == "back_in_stock"]
    assert (sent["channel"], sent["address"]) == ("email", address)
    # Then the raw email carries both RFC 8058 headers and the link is also in the body
    raw = email.message_from_string(sent["content"]["raw"], policy=email.policy.default)
    assert str(raw["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    url = str(raw["List-Unsubscribe"]).strip("<>")
    assert url.startswith("https://")
    assert url in sent["content"]["text"]
    path = "/unsubscribe/" + url.rsplit("/unsubscribe/", 1)[1]
    # And the link works through the front door with no sign-in: GET shows a button, POST opts out
    page = local_stack.request("GET", path)
    assert page.status == 200
    assert b'method="post"' in page.body
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(2):  # a mail client may retry: still one opt-out
        done = local_stack.request("POST", path, b"List-Unsubscribe=One-Click", form)
        assert done.status == 200, done.body
    local_stack.wait_quiet(timeout=90)
    profile = local_stack.api("GET", f"/customers/{customer_id}").json()
    assert profile["consents"]["email:stock_alerts"]["granted"] is False
    assert profile["consents"]["email"]["granted"] is True  # only that stream was left
    # When the SKU comes back again, the marketing message is suppressed with its reason
    _back_in_stock(local_stack, uid, sku, 3)
    history = local_stack.api("GET", f"/customers/{customer_id}/notifications").json()["history"]
    states = [(h["status"], h.get("reason")) for h in history if h["intent"] == "back_in_stock"]
    assert ("suppressed", "unsubscribed") in states
    assert [
        o
        for o in local_stack.api("GET", f"/customers/{customer_id}/notifications").json()["outbox"]
        if o["intent"] == "back_in_stock"
    ] == [sent]


def test_a_bounce_falls_back_to_push_and_a_published_template_is_used(
    local_stack: LocalStack, uid: str
) -> None:
    # Given a customer reachable by email first and push second, and a published push text
    customer_id, address = _sign_up(local_stack, uid, push=True)
    text = "{first_name}: {sku} ya está en {location_id} " + uid
    put = local_stack.api(
        "PUT", "/templates/back_in_stock/push/es", {"content": {"title": "¡Ya está!", "body": text}}
    )
    assert put.status == 201, put.body
    version = put.json()["version"]
    # When SES reports a hard bounce of her email address
    _feedback(local_stack, "message_feedback_ses_bounce", **{"ana.garcia@correo.es": address})
    body = _alerted(local_stack, uid, customer_id, f"SKU-BNC-{uid}")
    # Then the back-in-stock message went by push, with the published text and its version
    (sent,) = [o for o in body["outbox"] if o["intent"] == "back_in_stock"]
    assert sent["channel"] == "push"
    assert sent["content"]["title"] == "¡Ya está!"
    assert sent["content"]["body"].endswith(uid)
    (entry,) = [h for h in body["history"] if h["intent"] == "back_in_stock" and h["status"] == "sent"]
    assert entry["template_version"] == version


def test_an_sms_stop_and_a_complaint_change_the_consents(local_stack: LocalStack, uid: str) -> None:
    phone = "+3461" + str(int(uid, 16))[-7:].rjust(7, "0")
    customer_id, address = _sign_up(local_stack, uid, push=False, phone=phone)
    _feedback(
        local_stack,
        "message_feedback_inbound_sms",
        **{"+34611222333": phone, "cae173d2-66b9-564c-8309-21f858e9fb84": f"in-{uid}"},
    )
    _feedback(
        local_stack,
        "message_feedback_ses_complaint",
        **{"ana.garcia@correo.es": address, 'feedbackId": "': f'feedbackId": "{uid}-'},
    )
    consents = local_stack.api("GET", f"/customers/{customer_id}").json()["consents"]
    assert consents["sms"]["granted"] is False
    assert consents["sms"]["source"] == "sms:stop"
    assert {consents[f"email:{t}"]["granted"] for t in ("points", "offers", "stock_alerts")} == {False}
    assert consents["email"]["granted"] is True


def test_a_whatsapp_stop_is_confirmed_once_on_whatsapp(local_stack: LocalStack, uid: str) -> None:
    # Given a customer known by her phone
    phone = "+3462" + str(int(uid, 16))[-7:].rjust(7, "0")
    customer_id, _ = _sign_up(local_stack, uid, push=False, phone=phone)
    # When she writes STOP on WhatsApp (Meta's sample, her number, now) and Meta delivers it twice
    document = load_event("webhooks/whatsapp/text_message.json")
    value = document["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = phone.lstrip("+")
    now = str(int(datetime.now(UTC).timestamp()))
    value["messages"][0].update({"from": phone.lstrip("+"), "id": f"wamid.{uid}", "timestamp": now})
    value["messages"][0]["text"]["body"] = "STOP"
    raw = json.dumps(document).encode()
    for _ in range(2):
        resp = local_stack.request("POST", "/webhooks/whatsapp", raw, provider_headers("whatsapp", raw))
        assert resp.status == 200, resp.body
    local_stack.wait_quiet(timeout=90)
    # Then WhatsApp is refused, and one confirmation went out on WhatsApp to her number all the same
    profile = local_stack.api("GET", f"/customers/{customer_id}").json()
    assert profile["consents"]["whatsapp"]["granted"] is False
    body = local_stack.api("GET", f"/customers/{customer_id}/notifications").json()
    (sent,) = [o for o in body["outbox"] if o["intent"] == "whatsapp_stop_confirmed"]
    assert (sent["channel"], sent["address"]) == ("whatsapp", phone)
    assert sent["content"]["text"].startswith("Hecho")
    history = [h for h in body["history"] if h["intent"] == "whatsapp_stop_confirmed"]
    assert [h["status"] for h in history] == ["sent"]
