"""Points on the local stack: a store purchase with a card earns, a WhatsApp order earns for the
same person, and a store return reverses exactly the returned line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devstack.stack import LocalStack
from tests.support.lambdas import load_event

pytestmark = pytest.mark.e2e


def test_store_and_whatsapp_purchases_earn_for_one_customer_and_a_return_reverses(
    local_stack: LocalStack, uid: str
) -> None:
    # Given a customer known by email + phone (web shop) and email + card (app)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    card = str(int(uid, 16))[-12:].rjust(12, "7")
    email = f"ana.{uid}@gmail.com"
    phone = "+346" + str(int(uid, 16))[-8:].rjust(8, "1")
    web = load_event("webhooks/web_customer_created.json")
    web["id"] = f"wh-cust-{uid}"
    web["data"].update(id=f"shop-{uid}", email=email, phone=phone)
    app = load_event("webhooks/app_sign_up.json")
    app["event_id"] = f"app-{uid}"
    app["device"]["id"] = f"dev-{uid}"
    app["user"].update(email=email, loyalty_card=card)
    for channel, document in (("web", web), ("app", app)):
        assert local_stack.post_webhook(channel, document).status == 202
        local_stack.wait_quiet(timeout=90)
    # When she buys in a store with her card (99.50 + 25.00) and on WhatsApp from her phone (39.90)
    sale = load_event("webhooks/pos_sale.json")
    sale.update(ticket_id=f"T-{uid}", loyalty_card=card, pos_customer_no=None, issued_at=now)
    chat = load_event("webhooks/chat_order.json")
    chat.update(message_id=f"wamid.{uid}", timestamp=now)
    chat["from"]["phone"] = phone
    chat["order"]["order_id"] = f"WA-{uid}"
    for channel, document in (("pos", sale), ("chat", chat)):
        assert local_stack.post_webhook(channel, document).status == 202
    local_stack.wait_quiet(timeout=90)
    resp = local_stack.api("GET", f"/customers?card={card}")
    assert resp.status == 200, resp.body
    customer_id = resp.json()["customer_id"]
    points = local_stack.api("GET", f"/customers/{customer_id}/points").json()
    # Then both purchases earned for the same customer: 124 + 39 base, +50 for a new channel,
    # +100 omnichannel (two channels within 30 days)
    assert {lot["channel"] for lot in points["lots"]} == {"pos", "chat"}
    assert points["pending"] + points["available"] == 124 + 39 + 50 + 100
    # When the beanie (line 2, 25 points) is returned at the till
    ret = load_event("webhooks/pos_return.json")
    ret.update(ticket_id=f"R-{uid}", loyalty_card=card, original_ticket_id=f"T-{uid}", issued_at=now)
    assert local_stack.post_webhook("pos", ret).status == 202
    local_stack.wait_quiet(timeout=90)
    # Then exactly its points are reversed, and the ledger explains every entry
    points = local_stack.api("GET", f"/customers/{customer_id}/points").json()
    assert points["pending"] + points["available"] == 124 + 39 + 50 + 100 - 25
    ledger = local_stack.api("GET", f"/customers/{customer_id}/ledger?limit=10").json()
    kinds = sorted(e["kind"] for e in ledger["entries"])
    assert kinds == ["bonus", "earn", "earn", "reverse"]
    reverse = next(e for e in ledger["entries"] if e["kind"] == "reverse")
    assert (reverse["order_id"], reverse["points"], reverse["lines"][0]["line_id"]) == (f"T-{uid}", -25, "2")


def test_points_jobs_run_on_demand_on_the_local_stack(local_stack: LocalStack) -> None:
    # When each points schedule is invoked on demand (as EventBridge Scheduler would)
    for function in ("ReleasePendingPointsFunction", "ExpirePointsFunction", "ReviewTiersFunction"):
        outcome = local_stack.invoke_schedule(function)
        # Then it completes its run and says so
        assert outcome.ok, outcome.error
        assert outcome.result["complete"] is True
