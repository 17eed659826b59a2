"""The router down for longer than the stream's record age, then a replay: nothing is lost.

The local stack emulates ``MaximumRecordAgeInSeconds`` (the router's poller skips records older
than one hour and sends only their metadata to the failure queue); the test moves the poller's
clock forward instead of waiting an hour.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.pollers import StreamPoller
from devstack.stack import LocalStack
from loyalty import aws
from loyalty.ops.__main__ import run
from loyalty.settings import get_settings
from tests.support.lambdas import load_event

pytestmark = pytest.mark.e2e


def _journey(stack: LocalStack, uid: str, now: str) -> str:
    """A customer signs up in the app with a card, then buys in a store with it; her card."""
    card = str(int(uid, 16))[-12:].rjust(12, "7")
    app = load_event("webhooks/app_sign_up.json")
    app.update(event_id=f"app-{uid}", timestamp=now)
    app["device"]["id"] = f"dev-{uid}"
    app["user"].update(email=f"ops.{uid}@gmail.com", loyalty_card=card)
    assert stack.post_webhook("app", app).status == 202
    sale = load_event("webhooks/pos_sale.json")
    sale.update(ticket_id=f"T-{uid}", loyalty_card=card, pos_customer_no=None, issued_at=now)
    assert stack.post_webhook("pos", sale).status == 202
    return card


def _state(stack: LocalStack, card: str) -> dict[str, Any]:
    """What the system knows about the card's customer (ids left out: they differ by run)."""
    resp = stack.api("GET", f"/customers?card={card}")
    if resp.status != 200:
        return {"customer": resp.status}
    customer_id = resp.json()["customer_id"]
    points = stack.api("GET", f"/customers/{customer_id}/points").json()
    ledger = stack.api("GET", f"/customers/{customer_id}/ledger?limit=20").json()
    view = stack.api("GET", f"/customers/{customer_id}").json()
    return {
        "customer": 200,
        "points": points["pending"] + points["available"],
        "lots": sorted(lot["channel"] for lot in points["lots"]),
        "ledger": sorted((e["kind"], e["points"]) for e in ledger["entries"]),
        "timeline": sorted(e.get("type", "") for e in view["last_interactions"] if e["entity"] == "timeline"),
    }


def _router(stack: LocalStack) -> StreamPoller:
    (poller,) = [p for p in stack.stream_pollers if p.source.function == "RouteEventsFunction"]
    return poller


def _replay(stack: LocalStack, start: str, end: str) -> dict[str, Any]:
    """The ops tool's replay of [start, end] on the local stack's emulator."""
    try:
        return run(
            ["--stage", "local", "--endpoint-url", stack.moto_url, "replay", "--from", start, "--to", end]
        )
    finally:
        aws.reset()
        get_settings.cache_clear()


def test_router_down_past_the_record_age_then_replayed_ends_as_without_the_outage(
    local_stack: LocalStack, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run without outage
    started = datetime.now(UTC).replace(microsecond=0)
    now = started.isoformat()
    card_a = _journey(local_stack, f"{uid}a", now)
    local_stack.wait_quiet(timeout=90)
    expected = _state(local_stack, card_a)
    assert expected["customer"] == 200
    assert expected["points"] > 0
    # When the router is down while the same journey happens for another customer
    router = _router(local_stack)
    failures_before = router.sent_to_failure
    router.pause_seen.clear()
    router.paused.set()
    assert router.pause_seen.wait(timeout=30)  # no read in flight any more
    card_b = _journey(local_stack, f"{uid}b", now)
    local_stack.wait_quiet(timeout=90)
    # and comes back more than an hour later: its records are past MaximumRecordAgeInSeconds
    router.clock = lambda: time.time() + 2 * 3600
    router.paused.clear()
    try:
        local_stack.wait_quiet(timeout=90)
    finally:
        router.clock = time.time
    # Then the records were skipped (metadata to the failure queue) and nothing was applied
    assert router.sent_to_failure > failures_before
    assert _state(local_stack, card_b) == {"customer": 404}
    # When the operator replays the window through the ops tool (on the local stack's emulator)
    for key in ("AWS_ENDPOINT_URL", "TABLE_NAME", "IDENTITY_QUEUE_URL", "POINTS_QUEUE_URL"):
        monkeypatch.setenv(key, "")
    for key in ("STOCK_QUEUE_URL", "ANALYTICS_QUEUE_URL"):
        monkeypatch.setenv(key, "")
    try:
        windows = run(
            ["--stage", "local", "--endpoint-url", local_stack.moto_url, "redrive", "stream-failures"]
        )
        assert windows["stream_failures"]["stream_windows"]
        start = (started - timedelta(minutes=1)).isoformat()
        end = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    finally:
        aws.reset()
        get_settings.cache_clear()
    report = _replay(local_stack, start, end)
    assert report["replay"]["events"] >= 4
    local_stack.wait_quiet(timeout=90)
    # Then the final state is the one of the run without the outage
    assert _state(local_stack, card_b) == expected
    # and replaying again (every consumer is idempotent) changes nothing
    _replay(local_stack, start, end)
    local_stack.wait_quiet(timeout=90)
    assert _state(local_stack, card_b) == expected
    assert json.dumps(_state(local_stack, card_a)) == json.dumps(expected)
