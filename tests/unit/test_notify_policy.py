"""Channel selection, quiet hours and budget decisions (pure, no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.notify import policy
from loyalty.notify.catalogue import Klass, match
from loyalty.notify.policy import Limits, Recipient
from tests.support import notify as fx

LIMITS = Limits(weekly=10, marketing_weekly=3, marketing_per_channel_weekly=2, quiet_start=21, quiet_end=9)
CONTACTS = {"email": "a@example.com", "phone": "+34600000001", "device_id": "dev-1"}


def recipient(
    granted: dict[str, bool], preferred: str | None = None, contacts: dict[str, str] | None = None
) -> Recipient:
    return Recipient(
        customer_id="c_1",
        status="active",
        locale="es",
        timezone="Europe/Madrid",
        preferred_channel=preferred,
        consents=fx.consents(**granted),
        contacts=CONTACTS if contacts is None else contacts,
    )


# -- channels ---------------------------------------------------------------------------------------
def test_preferred_channel_first_then_the_fallback_order() -> None:
    r = recipient({"email": True, "sms": True, "whatsapp": True, "push": True}, preferred="email")
    assert policy.channel_order(r) == (["email", "whatsapp", "sms", "push"], None)


def test_without_a_preference_whatsapp_then_sms_then_email_then_push() -> None:
    r = recipient({"email": True, "sms": True, "whatsapp": True, "push": True})
    assert policy.channel_order(r)[0] == ["whatsapp", "sms", "email", "push"]


def test_only_granted_channels_an_opt_out_wins_over_the_preference() -> None:
    r = recipient({"email": False, "sms": True}, preferred="email")
    assert policy.channel_order(r) == (["sms"], None)


def test_no_consent_at_all() -> None:
    assert policy.channel_order(recipient({})) == ([], "no_consent")
    assert policy.channel_order(recipient({"email": False, "sms": False})) == ([], "no_consent")


def test_push_only_where_a_device_exists() -> None:
    r = recipient({"push": True, "email": True}, preferred="push", contacts={"email": "a@example.com"})
    assert policy.channel_order(r) == (["email"], None)
    r = recipient({"push": True}, preferred="push", contacts={"email": "a@example.com"})
    assert policy.channel_order(r) == ([], "no_contact")


def test_a_consent_entry_that_is_not_explicitly_granted_does_not_count() -> None:
    r = Recipient("c_1", "active", "es", None, None, {"email": {"granted": "yes"}}, CONTACTS)
    assert policy.channel_order(r) == ([], "no_consent")


# -- quiet hours ------------------------------------------------------------------------------------
def test_quiet_hours_in_the_customers_time_zone() -> None:
    # 22:30 in Madrid (21:30 UTC in winter) is quiet until 09:00 Madrid = 08:00 UTC next day
    now = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)
    assert policy.quiet_until(now, "Europe/Madrid", LIMITS) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    # the same instant is 16:30 in New York: not quiet
    assert policy.quiet_until(now, "America/New_York", LIMITS) is None


def test_early_morning_is_quiet_until_the_same_day() -> None:
    now = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # 06:00 Madrid
    assert policy.quiet_until(now, "Europe/Madrid", LIMITS) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_unknown_time_zone_uses_the_default() -> None:
    now = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)
    assert policy.quiet_until(now, "Mars/Olympus", LIMITS) == policy.quiet_until(now, "Europe/Madrid", LIMITS)


@settings(max_examples=100, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 365),
    tz=st.sampled_from(["Europe/Madrid", "America/Mexico_City", "Asia/Tokyo", "UTC", "Australia/Sydney"]),
    start=st.integers(min_value=0, max_value=23),
    end=st.integers(min_value=0, max_value=23),
)
def test_a_deferred_message_is_released_at_the_end_of_quiet_hours(
    minutes: int, tz: str, start: int, end: int
) -> None:
    limits = Limits(10, 3, 2, start, end)
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    release = policy.quiet_until(now, tz, limits)
    if release is None:
        return
    local = release.astimezone(ZoneInfo(tz))
    assert now < release <= now + timedelta(hours=25)
    assert local.hour == end or local.hour == end + 1  # +1: a DST jump over the hour
    assert policy.quiet_until(release, tz, limits) is None  # not quiet any more


# -- budget -----------------------------------------------------------------------------------------
def test_marketing_moves_to_the_next_channel_when_one_channel_is_full() -> None:
    budget = {"total": 2, "marketing": 2, "mkt_email": 2}
    assert policy.pick_channel(budget, "marketing", ["email", "sms"], LIMITS) == ("sms", None)


def test_marketing_capped_overall_transactional_not() -> None:
    budget = {"total": 3, "marketing": 3}
    assert policy.pick_channel(budget, "marketing", ["email", "sms"], LIMITS) == (None, "capped")
    assert policy.pick_channel(budget, "transactional", ["email"], LIMITS) == ("email", None)


def test_the_overall_cap_stops_transactional_but_not_critical() -> None:
    budget = {"total": 10}
    assert policy.pick_channel(budget, "transactional", ["email"], LIMITS) == (None, "capped")
    assert policy.pick_channel(budget, "critical", ["email"], LIMITS) == ("email", None)


def test_budget_update_expressions() -> None:
    expr, cond, names, _ = policy.budget_update("marketing", "sms", LIMITS)
    assert expr.startswith("ADD")
    assert cond is not None
    assert names["#mch"] == "mkt_sms"
    expr, cond, names, _ = policy.budget_update("critical", "sms", LIMITS)
    assert cond is None
    assert names["#crit"] == "critical"


def test_budget_window_is_the_iso_week() -> None:
    assert policy.budget_window(datetime(2026, 11, 23, tzinfo=UTC)) == "2026-W48"
    assert policy.window_end(datetime(2026, 11, 25, 13, tzinfo=UTC)) == datetime(2026, 11, 30, tzinfo=UTC)


# -- catalogue --------------------------------------------------------------------------------------
def test_points_earned_only_on_the_pending_to_available_transition() -> None:
    pending, available = fx.lot("c_1", "T1", "pending"), fx.lot("c_1", "T1", "available")
    assert [t.rule.intent for t in match(available, pending)] == ["points_earned"]
    assert match(pending, None) == []
    assert match(available, available) == []  # a later change of an available lot says nothing
    assert [t.rule.intent for t in match(available, None)] == ["points_earned"]  # no pending period


def test_a_lot_moved_by_a_merge_is_not_news() -> None:
    moved = {**fx.lot("c_survivor", "T1", "available"), "origin_customer_id": "c_absorbed"}
    assert match(moved, None) == []
    matured = {**fx.lot("c_survivor", "T1", "pending"), "origin_customer_id": "c_absorbed"}
    assert [t.rule.intent for t in match({**matured, "status": "available"}, matured)] == ["points_earned"]


def test_tier_reached_only_upwards() -> None:
    assert [t.rule.intent for t in match(fx.tier_change("c_1"), None)] == ["tier_reached"]
    assert match(fx.tier_change("c_1", "gold", "silver"), None) == []


def test_reservation_ready_and_its_reminder() -> None:
    triggers = match(fx.reservation("c_1"), None)
    assert [t.rule.intent for t in triggers] == ["reservation_ready", "reservation_expiring"]
    assert triggers[1].due == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert match(fx.reservation("c_1", status="collected"), fx.reservation("c_1")) == []


def test_back_in_stock_is_for_the_skus_subscribers() -> None:
    (trigger,) = match(fx.back_in_stock(), None)
    assert trigger.rule.audience == "sku_subscribers"
    assert trigger.customer_id is None
    out_of_stock = {**fx.back_in_stock(), "signal": "out_of_stock"}
    assert match(out_of_stock, None) == []


def test_order_status_when_an_order_event_is_attributed() -> None:
    before, after = fx.order_event("e1"), fx.order_event("e1", customer_id="c_1")
    (trigger,) = match(after, before)
    assert trigger.rule.intent == "order_status"
    assert trigger.data["status"] == "placed"
    assert trigger.data["order_id"] == "W-e1"
    assert match(after, after) == []  # already attributed
    assert match(after, None) == []  # the recorded stage has no customer yet
    pos_sale = fx.order_event("e2", "order.completed", "pos", "c_1")
    assert match(pos_sale, fx.order_event("e2", "order.completed", "pos")) == []  # points say it


def test_welcome_on_a_new_profile_only() -> None:
    profile = {"pk": "CUST#c_1", "sk": "PROFILE", "entity": "profile", "customer_id": "c_1"}
    assert [t.rule.intent for t in match(profile, None)] == ["welcome"]
    assert match({**profile, "first_name": "Ana"}, profile) == []
    assert match(None, profile) == []


# -- budget invariant (property) --------------------------------------------------------------------
def _apply(budget: dict[str, int], klass: str, channel: str) -> None:
    """What the conditional ADD does to the counters when it succeeds."""
    if klass == "critical":
        budget["critical"] = budget.get("critical", 0) + 1
        budget[f"ch_{channel}"] = budget.get(f"ch_{channel}", 0) + 1
        return
    for key in ("total", f"ch_{channel}") + (("marketing", f"mkt_{channel}") if klass == "marketing" else ()):
        budget[key] = budget.get(key, 0) + 1


@settings(max_examples=100, deadline=None)
@given(
    intents=st.lists(
        st.tuples(
            st.sampled_from(["critical", "transactional", "marketing"]),
            st.lists(
                st.sampled_from(["email", "sms", "push", "whatsapp"]), min_size=1, max_size=4, unique=True
            ),
        ),
        max_size=40,
    ),
    weekly=st.integers(min_value=1, max_value=12),
    marketing=st.integers(min_value=0, max_value=5),
    per_channel=st.integers(min_value=0, max_value=3),
)
def test_no_sequence_of_intents_exceeds_the_budget(
    intents: list[tuple[Klass, list[str]]], weekly: int, marketing: int, per_channel: int
) -> None:
    limits = Limits(weekly, marketing, per_channel, 21, 9)
    budget: dict[str, int] = {}
    for klass, channels in intents:
        channel, reason = policy.pick_channel(budget, klass, channels, limits)
        if klass == "critical":
            assert channel == channels[0]  # never refused, always the first choice
        if channel is None:
            assert reason == "capped"
            continue
        _apply(budget, klass, channel)
    assert budget.get("total", 0) <= weekly
    assert budget.get("marketing", 0) <= min(marketing, weekly)
    assert all(v <= per_channel for k, v in budget.items() if k.startswith("mkt_"))
    sent_critical = sum(1 for klass, _ in intents if klass == "critical")
    assert budget.get("critical", 0) == sent_critical
