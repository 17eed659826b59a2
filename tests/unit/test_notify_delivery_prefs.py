"""A customer's own quiet hours, digest frequency and marketing cap, honoured by the fan-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.notify import policy
from loyalty.notify.fanout import Fanout, release_due
from loyalty.notify.policy import Preferences
from loyalty.notify.preferences import DeliveryChange, preferences, save_delivery
from loyalty.notify.store import NotifyStore, PreferencesItem
from loyalty.store.table import Table
from tests.support import notify as fx

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # Monday, 12:00 in Madrid: not in the stage's quiet hours
NIGHT = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Madrid: in the stage's quiet hours


@pytest.fixture
def table(stack: Resolver) -> Table:
    fx.seed_customer(stack_table := Table(), "c_1")
    return stack_table


def state(**change: Any) -> Preferences | None:
    return save_delivery(
        "c_1", DeliveryChange.model_validate(change), source="test", now=NOON - timedelta(hours=1)
    )


def due(table: Table, message_id: str) -> str:
    message = table.get("CUST#c_1", f"NOTIF#MSG#{message_id}")
    assert message is not None
    return str(message["due"])


def earn(order_id: str = "T1") -> tuple[dict[str, Any], dict[str, Any]]:
    return fx.lot("c_1", order_id, "available"), fx.lot("c_1", order_id, "pending")


def test_my_quiet_hours_replace_the_stages_and_defer_to_their_end(table: Table) -> None:
    # Given Ana wants no messages between 11:30 and 14:00 (Madrid)
    state(quiet_hours={"start": "11:30", "end": "14:00"})
    fanout = Fanout()
    # When points are earned at 12:00 Madrid, the message waits until 14:00 Madrid (13:00 UTC)
    (earned,) = fanout.fan_out(*earn(), now=NOON)
    assert (earned.status, earned.reason) == ("deferred", "quiet_hours")
    assert due(table, earned.message_id) == "2026-11-23T13:00:00+00:00"
    # And a reservation ready (critical) still goes at once
    (ready, *_) = fanout.fan_out(fx.reservation("c_1"), fx.reservation("c_1", status="held"), now=NOON)
    assert (ready.intent, ready.status) == ("reservation_ready", "queued")
    # And at 23:30, quiet for the stage but not for her, a message goes at once
    (late,) = fanout.fan_out(*earn("T2"), now=NIGHT)
    assert late.status == "queued"
    # When the job runs at 13:00 UTC, the deferred one is released, not dropped
    released = release_due(datetime(2026, 11, 23, 13, 0, tzinfo=UTC))
    assert [(o.message_id, o.status) for o in released] == [(earned.message_id, "queued")]


def test_a_daily_digest_gathers_marketing_and_leaves_the_rest_alone(table: Table) -> None:
    state(frequency="daily_digest")
    table.put(fx.alert("c_1"))
    fanout = Fanout()
    marketing = [
        *fanout.fan_out(fx.points_expiring("c_1", "2026-11-20"), None, now=NOON),
        *fanout.fan_out(fx.back_in_stock(), None, now=NOON + timedelta(minutes=5)),
    ]
    (earned,) = fanout.fan_out(*earn(), now=NOON)
    assert earned.status == "queued"
    assert [(o.status, o.reason) for o in marketing] == [("deferred", "digest")] * 2
    dues = {due(table, o.message_id) for o in marketing}
    assert dues == {"2026-11-23T17:00:00+00:00"}  # 18:00 in Madrid
    # When the job runs at 18:00 Madrid: ONE digest, charged once
    (digest,) = release_due(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))
    assert (digest.intent, digest.status) == ("digest", "queued")
    budget = fx.week_budget(table)
    assert budget["marketing"] == 1


def test_a_marketing_message_released_from_quiet_hours_joins_the_digest(table: Table) -> None:
    state(frequency="daily_digest", quiet_hours={"start": "11:30", "end": "12:30"})
    (offer,) = Fanout().fan_out(fx.points_expiring("c_1"), None, now=NOON)
    assert (offer.status, offer.reason) == ("deferred", "quiet_hours")
    (moved,) = release_due(datetime(2026, 11, 23, 11, 30, tzinfo=UTC))
    assert (moved.status, moved.reason) == ("deferred", "digest")
    assert due(table, offer.message_id) == "2026-11-23T17:00:00+00:00"


def test_weekly_digests_are_due_on_monday_evening() -> None:
    weekly = Preferences(frequency="weekly")
    wednesday = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert policy.digest_until(wednesday, "Europe/Madrid", weekly) == datetime(
        2026, 11, 30, 17, 0, tzinfo=UTC
    )
    assert policy.digest_until(NOON, "Europe/Madrid", weekly) == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    monday_night = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    assert policy.digest_until(monday_night, "Europe/Madrid", weekly) == datetime(
        2026, 11, 30, 17, 0, tzinfo=UTC
    )
    assert policy.digest_until(NOON, "Europe/Madrid", Preferences()) is None


def test_my_marketing_cap_is_lower_than_the_stages(table: Table) -> None:
    state(marketing_weekly_max=1)
    fanout = Fanout()
    (first,) = fanout.fan_out(fx.points_expiring("c_1", "2026-11-20"), None, now=NOON)
    (second,) = fanout.fan_out(fx.points_expiring("c_1", "2026-11-21"), None, now=NOON)
    assert first.status == "queued"
    assert (second.status, second.reason) == ("suppressed", "capped")
    (earned,) = fanout.fan_out(*earn(), now=NOON)  # transactional messages are not marketing
    assert earned.status == "queued"


def test_the_latest_statement_wins_and_follows_a_merge(table: Table) -> None:
    store = NotifyStore()
    early, late = "2026-11-20T10:00:00+00:00", "2026-11-21T10:00:00+00:00"
    # Given Ana said "weekly" under an id later absorbed, and nothing under the survivor
    fx.seed_customer(table, "c_old")
    assert store.save_preferences(PreferencesItem("c_old", Preferences(frequency="weekly"), late))
    profile = table.get("CUST#c_1", "PROFILE")
    assert profile is not None
    table.put(profile | {"absorbed_ids": ["c_old"]})
    # Then the survivor's messages follow what she said
    assert preferences("c_1")["frequency"] == "weekly"
    # And an older statement under the survivor does not override it
    assert store.save_preferences(PreferencesItem("c_1", Preferences(frequency="daily_digest"), early))
    assert preferences("c_1")["frequency"] == "weekly"
    # And a replayed or older statement of the same id changes nothing
    assert not store.save_preferences(PreferencesItem("c_old", Preferences(), early))
    assert not store.save_preferences(PreferencesItem("c_old", Preferences(frequency="weekly"), late))


def test_stating_the_same_again_changes_nothing(table: Table) -> None:
    assert state(frequency="weekly") == Preferences(frequency="weekly")
    assert state(frequency="weekly") is None
    assert state() is None
