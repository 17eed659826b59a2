"""End to end: a store sale, a web order, a chat message and an app sign-up become ONE customer."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from devstack.stack import LocalStack
from tests.support.lambdas import load_event

pytestmark = pytest.mark.e2e


def test_four_channels_one_customer_visible_through_the_api(local_stack: LocalStack, uid: str) -> None:
    # Given this test's own card, email and phone
    card = str(int(uid, 16))[-12:].rjust(12, "7")
    email = f"ana.{uid}@gmail.com"
    phone = "+346" + str(int(uid, 16))[-8:].rjust(8, "1")
    pos = load_event("webhooks/pos_sale.json")
    pos.update(ticket_id=f"T-{uid}", loyalty_card=card, pos_customer_no=f"C-{uid}")
    web = load_event("webhooks/web_order_created.json")
    web["id"] = f"wh-{uid}"
    web["data"]["order_id"] = f"W-{uid}"
    web["data"]["customer"].update(email=email.upper(), phone=phone)
    chat = load_event("webhooks/chat_message.json")
    chat["message_id"] = f"wamid.{uid}"
    chat["from"]["phone"] = phone.replace("+34", "0034 ")
    app = load_event("webhooks/app_sign_up.json")
    app["event_id"] = f"app-{uid}"
    app["device"]["id"] = f"dev-{uid}"
    app["user"].update(email=email, loyalty_card=card)
    # When a store sale, a web order and a chat message arrive, then an app sign-up links card and email
    for channel, document in (("pos", pos), ("web", web), ("chat", chat)):
        assert local_stack.post_webhook(channel, document).status == 202
    local_stack.wait_quiet(timeout=90)
    assert local_stack.post_webhook("app", app).status == 202
    local_stack.wait_quiet(timeout=90)
    # Then staff find one customer by any identifier, with every identifier and every interaction
    by_card = local_stack.api("GET", f"/customers?card={card}")
    assert by_card.status == 200, by_card.body
    view = by_card.json()
    by_phone = local_stack.api("GET", f"/customers?phone={quote(phone)}").json()
    by_email = local_stack.api("GET", f"/customers?email={email}").json()
    assert view["customer_id"] == by_phone["customer_id"] == by_email["customer_id"]
    types = {i["type"] for i in view["identifiers"]}
    assert {"loyalty_card", "pos_customer", "email", "phone", "device_id"} <= types
    events = [e for e in view["last_interactions"] if e["entity"] == "timeline"]
    assert {e["channel"] for e in events} == {"pos", "web", "chat", "app"}
    assert len(view["absorbed_ids"]) == 1
