"""The staff console in a real browser (Debian's chromium) against the local stack."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from devstack.stack import LocalStack
from tests.browser.conftest import screenshot

ANA_CARD = "770012345678"


# ---------------------------------------------------------------- no sign-in needed
def test_the_sign_in_page_renders_in_the_browsers_language(console_url: str, page_es: Any) -> None:
    page_es.goto(console_url)
    expect(page_es.get_by_role("heading", name="Acceso del personal")).to_be_visible()
    expect(page_es.get_by_label("Correo electrónico")).to_be_visible()
    expect(page_es.get_by_role("textbox", name="Contraseña")).to_be_visible()
    expect(page_es.locator("html")).to_have_attribute("lang", "es")
    screenshot(page_es, "sign-in")


def test_an_app_route_loads_the_console_too(console_url: str, page_en: Any) -> None:
    page_en.goto(console_url + "customers/c_0123")  # SPA fallback: index.html, then the app routes
    expect(page_en.get_by_role("heading", name="Staff sign-in")).to_be_visible()


def test_language_switch_changes_every_label_and_is_remembered(console_url: str, page_es: Any) -> None:
    page_es.goto(console_url)
    page_es.get_by_text("English", exact=True).click()
    expect(page_es.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    expect(page_es.get_by_label("Email")).to_be_visible()
    expect(page_es.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page_es.locator("html")).to_have_attribute("lang", "en")
    page_es.reload()
    expect(page_es.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    page_es.get_by_text("Español", exact=True).click()
    expect(page_es.get_by_role("button", name="Entrar")).to_be_visible()


def test_sign_in_works_from_the_keyboard_alone(console_url: str, page_en: Any) -> None:
    page_en.goto(console_url)
    expect(page_en.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    page_en.keyboard.press("Tab")
    expect(page_en.get_by_label("Email")).to_be_focused()
    page_en.keyboard.type("store@demo.local")
    page_en.keyboard.press("Tab")
    expect(page_en.get_by_role("textbox", name="Password")).to_be_focused()
    page_en.keyboard.type("not-the-password")
    page_en.keyboard.press("Enter")  # submits the form: the answer is announced as an alert
    alert = page_en.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(re.compile(r"Wrong email or password|Sign-in failed"))
    expect(page_en.get_by_role("heading", name="Staff sign-in")).to_be_visible()


def test_the_cognito_api_is_proxied_same_origin(console_stack: LocalStack) -> None:
    """The browser calls Cognito's JSON API at /__devstack/cognito; the emulator answers it."""
    config = console_stack.request("GET", "/console/config.json").json()
    assert config["auth"]["mode"] == "password"
    assert config["auth"]["cognitoEndpoint"] == "/__devstack/cognito"
    body = {
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": config["auth"]["clientId"] or "no-such-client",
        "AuthParameters": {"USERNAME": "nobody@demo.local", "PASSWORD": "wrong-Passw0rd!"},
    }
    resp = console_stack.request(
        "POST",
        config["auth"]["cognitoEndpoint"],
        json.dumps(body).encode(),
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
        },
    )
    assert resp.status == 400, resp.body
    answer = resp.json()
    assert answer["__type"].split("#")[-1] in {
        "NotAuthorizedException",
        "UserNotFoundException",
        "ResourceNotFoundException",
    }


# ---------------------------------------------------------------- journeys that sign in
def _ana(stack: LocalStack) -> str:
    resp = stack.api("GET", f"/customers?card={ANA_CARD}")
    assert resp.status == 200, resp.body
    return str(resp.json()["customer_id"])


def _reserve(stack: LocalStack, customer_id: str, sku: str = "SKU-BEANIE") -> str:
    """A reservation for her at the Madrid store (placing one is the back office's: admin)."""
    body = {"customer_id": customer_id, "sku": sku, "quantity": 1, "location_id": "MAD-SOL"}
    resp = stack.api("POST", "/reservations", body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert resp.status == 201, resp.body
    return str(resp.json()["reservation_id"])


def test_store_staff_find_ana_by_card_see_points_and_timeline_and_collect(
    console_stack: LocalStack, sign_in: Any
) -> None:
    ana = _ana(console_stack)
    reservation = _reserve(console_stack, ana)
    page = sign_in("store@demo.local")
    expect(page.get_by_text("Store MAD-SOL")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="KPI dashboard")).to_have_count(0)
    # find Ana by her card (a scanner types the number and Enter)
    page.get_by_label(re.compile(r"^Identifier(?! type)")).fill(ANA_CARD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Customer Ana García")).to_be_visible()
    screenshot(page, "customer-360")
    page.get_by_role("tab", name="Points").click()
    expect(page.get_by_test_id("points-pending")).to_have_text(re.compile(r"[1-9]"))
    screenshot(page, "customer-points")
    page.get_by_role("tab", name="Timeline").click()
    expect(page.get_by_role("cell", name="order.completed").first).to_be_visible()
    screenshot(page, "customer-timeline")
    # collect her reservation at the Madrid store
    nav.get_by_role("link", name="Collect a reservation").click()
    page.get_by_label("Reservation id").fill(reservation)
    page.get_by_role("button", name="Look up").click()
    page.get_by_role("button", name="Hand over and mark collected").click()
    expect(page.get_by_role("status").filter(has_text="Collected.")).to_be_visible()
    screenshot(page, "collect")
    assert console_stack.api("GET", f"/reservations/{reservation}").json()["status"] == "collected"


def test_store_staff_see_a_skus_stock_across_stores(console_stack: LocalStack, sign_in: Any) -> None:
    expected = console_stack.api("GET", "/stock/SKU-SCARF").json()
    mine = next(loc for loc in expected["locations"] if loc["location_id"] == "MAD-SOL")
    page = sign_in("store@demo.local")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Stock").click()
    page.get_by_label("SKU").fill("SKU-SCARF")
    page.get_by_role("button", name="Show").click()
    table = page.get_by_role("table", name=re.compile(r"^SKU-SCARF"))
    row = table.get_by_role("row").filter(has=page.get_by_role("cell", name="MAD-SOL", exact=True))
    expect(row.get_by_role("cell").nth(1)).to_have_text(str(mine["on_hand"]))
    expect(row.get_by_role("cell").nth(3)).to_have_text(str(mine["available"]))
    expect(table.get_by_role("row", name=re.compile(r"^All locations"))).to_be_visible()
    screenshot(page, "stock")


def test_marketing_sees_a_days_kpi_chart_with_data(sign_in: Any) -> None:
    page = sign_in("marketing@demo.local")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="KPI dashboard").click()
    today = datetime.now(UTC).date()
    page.get_by_role("textbox", name="From", exact=True).fill((today - timedelta(days=14)).isoformat())
    page.get_by_role("textbox", name="To", exact=True).fill(today.isoformat())
    page.get_by_role("button", name="Show").click()
    chart = page.get_by_test_id("chart-revenue-channel")
    expect(chart).to_be_visible()
    expect(chart.locator(".recharts-bar-rectangle").first).to_be_visible()
    expect(page.get_by_role("table", name=re.compile(r"^The numbers \("))).to_contain_text("pos")
    screenshot(page, "kpis")


def _quarantine(stack: LocalStack) -> str:
    """Two app customers, each with a card, then two web sign-ups joining them (one shares the
    first one's email, the other the second one's, both the same phone): the merge would give one
    customer two cards, so it is held for review. The first twin's card."""
    uid = uuid.uuid4().hex[:10]
    digits = str(int(uid, 16))[-10:].zfill(10)
    now = datetime.now(UTC).replace(microsecond=0)

    def app_sign_up(n: int, email: str) -> dict[str, Any]:
        return {
            "event_id": f"app-{uid}-{n}",
            "event": "sign_up",
            "timestamp": (now - timedelta(minutes=10 - n)).isoformat().replace("+00:00", "Z"),
            "device": {"id": str(uuid.uuid4()), "platform": "ios"},
            "user": {"email": email, "loyalty_card": f"7{n}{digits}", "first_name": f"Twin{n}"},
        }

    def web_customer(n: int, email: str) -> dict[str, Any]:
        return {
            "id": f"wh_{uid}_{n}",
            "topic": "customers/create",
            "created_at": (now - timedelta(minutes=5 - n)).isoformat(),
            "data": {"id": f"shop-{uid}-{n}", "email": email, "phone": f"+3461{digits[:7]}"},
        }

    # (*@example.com is on the identity blocklist: it would link nobody)
    for step in (
        [app_sign_up(1, f"a-{uid}@twins.test"), app_sign_up(2, f"b-{uid}@twins.test")],
        [web_customer(1, f"b-{uid}@twins.test"), web_customer(2, f"a-{uid}@twins.test")],
    ):  # the twins exist before anything joins them (in either order, the join conflicts)
        for doc in step:
            assert stack.post_webhook("app" if "event" in doc else "web", doc).status == 202
        stack.wait_quiet(timeout=60)
    return f"71{digits}"


def test_admin_approves_a_merge_review(console_stack: LocalStack, sign_in: Any) -> None:
    twin = console_stack.api("GET", f"/customers?card={_quarantine(console_stack)}").json()["customer_id"]
    pending = console_stack.api("GET", "/merge-reviews").json()["reviews"]
    held = [r["review_id"] for r in pending if twin in r["customer_ids"]]
    assert len(held) == 1, pending
    review = held[0]
    page = sign_in("admin@demo.local")  # the policy gives merge reviews to admin only
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Merge reviews").click()
    card = page.get_by_role("article", name=review)
    expect(card.get_by_text("Twin1")).to_be_visible()
    expect(card.get_by_text("Twin2")).to_be_visible()
    screenshot(page, "merge-reviews")
    card.get_by_role("button", name="Approve merge").click()
    expect(page.get_by_role("article", name=review)).to_have_count(0)
    approved = console_stack.api("GET", "/merge-reviews?status=approved").json()["reviews"]
    assert review in [r["review_id"] for r in approved]


def test_marketing_creates_a_points_rule_and_deactivates_it(console_stack: LocalStack, sign_in: Any) -> None:
    rule = f"browser-x2-{uuid.uuid4().hex[:8]}"
    page = sign_in("marketing@demo.local")
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Points rules").click()
    form = page.get_by_role("region", name="New rule")
    form.get_by_role("textbox", name="Rule", exact=True).fill(rule)
    form.get_by_label("Description").fill("Double points, every channel")
    form.get_by_role("textbox", name="Multiplier").fill("2")
    form.get_by_role("button", name="Create rule").click()
    expect(page.get_by_role("status").filter(has_text=f"Rule {rule} created.")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=rule, exact=True))
    expect(row).to_contain_text("\N{MULTIPLICATION SIGN}2")
    screenshot(page, "points-rules")
    row.get_by_role("button", name=f"Deactivate {rule}").click()
    expect(row.get_by_role("button")).to_have_count(0)
    rules = console_stack.api("GET", "/points/rules", role="marketing").json()["rules"]
    assert [r["active"] for r in rules if r["rule_id"] == rule] == [False]
