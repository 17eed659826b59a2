"""The fan-out on moto: consent, suppression reasons, budget under concurrency, dedupe, quiet hours."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack import moto_patches
from devstack.template import Resolver
from loyalty.notify.fanout import Fanout, Outcome, release_due
from loyalty.settings import get_settings
from loyalty.store.table import Table
from tests.conftest import drain
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, load_function
from tests.support.streams import stream_event, stream_record

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Madrid: not quiet
NIGHT = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Madrid: quiet until 08:00 UTC


@pytest.fixture
def table(stack: Resolver) -> Table:
    return Table()


def queued(sqs: Any, stack: Resolver, channel: str) -> list[dict[str, Any]]:
    queue = {"email": "NotifyEmailQueue", "sms": "NotifySmsQueue", "push": "NotifyPushQueue"}.get(
        channel, "NotifyWhatsAppQueue"
    )
    return [json.loads(m["Body"]) for m in drain(sqs, stack.refs[queue])]


def timeline(table: Table, customer_id: str) -> list[dict[str, Any]]:
    return [
        i
        for i in table.query_all(f"CUST#{customer_id}", sk_prefix="TL#")
        if i["entity"] == "notification_log"
    ]


def earn(customer_id: str, order_id: str = "T1") -> tuple[dict[str, Any], dict[str, Any]]:
    return fx.lot(customer_id, order_id, "available"), fx.lot(customer_id, order_id, "pending")


# -- the happy path ---------------------------------------------------------------------------------
def test_points_earned_goes_to_the_preferred_consented_channel_once(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a customer who prefers SMS and granted email and SMS
    fx.seed_customer(table, "c_1", granted={"email": True, "sms": True}, preferred="sms")
    # When a lot becomes available
    (outcome,) = Fanout().fan_out(*earn("c_1"), now=NOON)
    # Then one message is queued on SMS, none elsewhere, and the timeline records it
    assert (outcome.status, outcome.channel, outcome.intent) == ("queued", "sms", "points_earned")
    assert queued(sqs, stack, "sms") == [{"customer_id": "c_1", "message_id": outcome.message_id}]
    assert queued(sqs, stack, "email") == []
    assert queued(sqs, stack, "whatsapp") == []
    (entry,) = timeline(table, "c_1")
    assert (entry["status"], entry["channel"], entry["intent"]) == ("queued", "sms", "points_earned")
    message = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert message is not None
    assert message["addresses"]["sms"] == "+34600000001"
    assert message["data"]["points"] == 120
    assert message["channels"] == ["sms", "email"]


# -- every suppression reason -----------------------------------------------------------------------
def test_no_consent_is_suppressed_and_recorded(table: Table, sqs: Any, stack: Resolver) -> None:
    fx.seed_customer(
        table, "c_1", granted={"email": False, "sms": False, "whatsapp": False}, preferred="email"
    )
    (outcome,) = Fanout().fan_out(*earn("c_1"), now=NOON)
    assert (outcome.status, outcome.reason) == ("suppressed", "no_consent")
    assert all(queued(sqs, stack, c) == [] for c in ("email", "sms", "push", "whatsapp"))
    (entry,) = timeline(table, "c_1")
    assert (entry["status"], entry["reason"]) == ("suppressed", "no_consent")


def test_no_contact_point_for_any_consented_channel(table: Table) -> None:
    fx.seed_customer(
        table, "c_1", granted={"push": True}, preferred="push", contacts={"email": "a@example.com"}
    )
    (outcome,) = Fanout().fan_out(*earn("c_1"), now=NOON)
    assert (outcome.status, outcome.reason) == ("suppressed", "no_contact")


def test_no_profile_and_inactive_profiles(table: Table) -> None:
    (outcome,) = Fanout().fan_out(*earn("c_ghost"), now=NOON)
    assert (outcome.status, outcome.reason) == ("suppressed", "no_profile")
    fx.seed_customer(table, "c_erased", status="erased")
    (outcome,) = Fanout().fan_out(*earn("c_erased"), now=NOON)
    assert (outcome.status, outcome.reason) == ("suppressed", "inactive")
    fx.seed_customer(table, "c_merging", status="merging")  # a merge in progress: still reachable
    (outcome,) = Fanout().fan_out(*earn("c_merging"), now=NOON)
    assert outcome.status == "queued"


def test_capped_marketing_is_suppressed_and_recorded(table: Table) -> None:
    # Given a customer with email and SMS (2 marketing per channel, 3 overall per week)
    fx.seed_customer(table, "c_1", granted={"email": True, "sms": True}, preferred="email")
    fanout = Fanout()
    outcomes = [
        fanout.fan_out(fx.points_expiring("c_1", f"2026-11-2{i}"), None, now=NOON + timedelta(minutes=i))[0]
        for i in range(5)
    ]
    # Then the per-channel cap moves the third to SMS, the overall cap stops the fourth and fifth
    assert [(o.status, o.channel) for o in outcomes[:3]] == [
        ("queued", "email"),
        ("queued", "email"),
        ("queued", "sms"),
    ]
    assert [(o.status, o.reason) for o in outcomes[3:]] == [("suppressed", "capped")] * 2
    reasons = sorted(str(e.get("reason")) for e in timeline(table, "c_1"))
    assert reasons == ["None", "None", "None", "capped", "capped"]
    budget = fx.week_budget(table)
    assert (budget["total"], budget["marketing"], budget["mkt_email"], budget["mkt_sms"]) == (3, 3, 2, 1)


def test_the_budget_is_shared_and_only_critical_bypasses_it(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_WEEKLY_CAP", "2")
    get_settings.cache_clear()
    fx.seed_customer(table, "c_1")
    fanout = Fanout()
    a = fanout.fan_out(*earn("c_1", "T1"), now=NOON)[0]
    b = fanout.fan_out(fx.tier_change("c_1"), None, now=NOON)[0]
    c = fanout.fan_out(*earn("c_1", "T2"), now=NOON)[0]
    ready = fanout.fan_out(fx.reservation("c_1"), None, now=NOON)
    assert [a.status, b.status, c.status] == ["queued", "queued", "suppressed"]
    assert c.reason == "capped"
    assert ready[0].intent == "reservation_ready"
    assert ready[0].status == "queued"
    budget = fx.week_budget(table)
    assert budget["total"] == 2
    assert budget["critical"] == 1


def test_duplicate_replays_produce_no_second_message(table: Table, sqs: Any, stack: Resolver) -> None:
    fx.seed_customer(table, "c_1")
    fanout = Fanout()
    first = fanout.fan_out(*earn("c_1"), now=NOON)[0]
    assert len(queued(sqs, stack, "email")) == 1
    # Given the sender already sent it
    table.update(
        "CUST#c_1",
        f"NOTIF#MSG#{first.message_id}",
        "SET #s = :s",
        names={"#s": "status"},
        values={":s": "sent"},
    )
    # When the same stream record is replayed (twice)
    again = [fanout.fan_out(*earn("c_1"), now=NOON + timedelta(minutes=m))[0] for m in (1, 2)]
    # Then nothing is queued and each replay is recorded as a duplicate
    assert all(
        (o.status, o.reason, o.message_id) == ("suppressed", "duplicate", first.message_id) for o in again
    )
    assert queued(sqs, stack, "email") == []
    entries = timeline(table, "c_1")
    assert sorted(str(e.get("reason")) for e in entries) == ["None", "duplicate", "duplicate"]
    budget = fx.week_budget(table)
    assert budget["total"] == 1


def test_a_replay_requeues_a_message_whose_first_send_to_sqs_was_lost(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    fx.seed_customer(table, "c_1")
    first = Fanout().fan_out(*earn("c_1"), now=NOON)[0]
    drain(sqs, stack.refs["NotifyEmailQueue"])  # lost between the transaction and the send
    replay = Fanout().fan_out(*earn("c_1"), now=NOON)[0]
    assert replay.reason == "duplicate"
    assert queued(sqs, stack, "email") == [{"customer_id": "c_1", "message_id": first.message_id}]


def test_redirected_customers_are_notified_as_their_survivor(table: Table) -> None:
    fx.seed_customer(table, "c_survivor", preferred="sms")
    table.put({"pk": "CUST#c_old", "sk": "REDIRECT", "entity": "redirect", "survivor_id": "c_survivor"})
    (outcome,) = Fanout().fan_out(*earn("c_old"), now=NOON)
    assert (outcome.customer_id, outcome.status, outcome.channel) == ("c_survivor", "queued", "sms")


# -- caps under concurrency -------------------------------------------------------------------------
def test_racing_marketing_intents_never_exceed_the_budget(table: Table) -> None:
    # Given DynamoDB's per-request atomicity in the emulator (moto alone has none)
    moto_patches.install()
    # and one customer and 12 marketing intents fanned out at the same moment by 12 threads
    fx.seed_customer(table, "c_1", granted={"email": True, "sms": True, "whatsapp": True}, preferred="email")
    fanout = Fanout()
    barrier = threading.Barrier(12)

    def racer(i: int) -> list[Outcome]:
        barrier.wait()
        return fanout.fan_out(fx.points_expiring("c_1", f"2026-10-{i + 10:02d}"), None, now=NOON)

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(racer, i) for i in range(12)]
        results = [o for f in futures for o in f.result()]  # an exception in a racer fails the test
    # Then exactly the marketing cap (3) is queued, at most 2 per channel, the rest capped
    sent = [o for o in results if o.status == "queued"]
    assert len(sent) == 3
    assert len(results) == 12
    assert all(o.reason == "capped" for o in results if o.status != "queued")
    per_channel = {c: sum(1 for o in sent if o.channel == c) for c in {o.channel for o in sent}}
    assert max(per_channel.values()) <= 2
    budget = fx.week_budget(table)
    assert budget["marketing"] == 3
    assert budget["total"] == 3


# -- quiet hours ------------------------------------------------------------------------------------
def test_quiet_hours_defer_then_the_job_releases(table: Table, sqs: Any, stack: Resolver) -> None:
    # Given a customer in Madrid and a points-earned change at 23:30 local time
    fx.seed_customer(table, "c_1")
    (outcome,) = Fanout().fan_out(*earn("c_1"), now=NIGHT)
    # Then it is deferred (not dropped, not charged), findable by its due hour
    assert (outcome.status, outcome.reason) == ("deferred", "quiet_hours")
    assert queued(sqs, stack, "email") == []
    message = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert message is not None
    assert message["gsi1pk"] == "NOTIFDUE#2026-11-24T08"
    assert table.get("CUST#c_1", "NOTIF#BUDGET#2026-W48") is None
    # When the job runs before the end of quiet hours nothing moves; after it, the message is queued
    assert release_due(datetime(2026, 11, 24, 7, 45, tzinfo=UTC)) == []
    (released,) = release_due(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    assert (released.status, released.channel) == ("queued", "email")
    assert queued(sqs, stack, "email") == [{"customer_id": "c_1", "message_id": outcome.message_id}]
    assert release_due(datetime(2026, 11, 24, 8, 15, tzinfo=UTC)) == []  # released once
    message = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert message is not None
    assert "gsi1pk" not in message
    assert message["status"] == "queued"
    (entry,) = timeline(table, "c_1")
    assert entry["status"] == "queued"


def test_an_opt_out_during_quiet_hours_wins_at_release(table: Table, sqs: Any, stack: Resolver) -> None:
    # Given a message deferred overnight on email
    fx.seed_customer(table, "c_1", granted={"email": True})
    (outcome,) = Fanout().fan_out(*earn("c_1"), now=NIGHT)
    assert outcome.status == "deferred"
    # When the customer opts out of email before the morning
    fx.seed_customer(table, "c_1", granted={"email": False})
    (released,) = release_due(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    # Then nothing is sent, and the record says why
    assert (released.status, released.reason) == ("suppressed", "no_consent")
    assert queued(sqs, stack, "email") == []
    (entry,) = timeline(table, "c_1")
    assert (entry["status"], entry["reason"]) == ("suppressed", "no_consent")


def test_critical_messages_ignore_quiet_hours(table: Table) -> None:
    fx.seed_customer(table, "c_1")
    outcomes = Fanout().fan_out(fx.reservation("c_1"), None, now=NIGHT)
    assert [(o.intent, o.status) for o in outcomes] == [
        ("reservation_ready", "queued"),
        ("reservation_expiring", "deferred"),
    ]


def test_a_reminder_is_dropped_as_obsolete_when_its_source_changed(table: Table) -> None:
    fx.seed_customer(table, "c_1")
    reservation = fx.reservation("c_1")
    table.put(reservation)
    Fanout().fan_out(reservation, None, now=NOON)
    table.put({**reservation, "status": "collected"})
    (outcome,) = release_due(datetime(2026, 11, 25, 16, 5, tzinfo=UTC))
    assert (outcome.intent, outcome.status, outcome.reason) == (
        "reservation_expiring",
        "suppressed",
        "obsolete",
    )


def test_a_reminder_still_valid_is_sent_when_due(table: Table) -> None:
    fx.seed_customer(table, "c_1")
    reservation = fx.reservation("c_1")
    table.put(reservation)
    Fanout().fan_out(reservation, None, now=NOON)
    (outcome,) = release_due(datetime(2026, 11, 25, 16, 5, tzinfo=UTC))
    assert (outcome.intent, outcome.status) == ("reservation_expiring", "queued")


def test_a_reminder_due_in_quiet_hours_waits_for_them_to_end(table: Table, sqs: Any, stack: Resolver) -> None:
    # Given a reservation held until 00:30 Madrid time: its reminder is due at 22:30 local (quiet)
    fx.seed_customer(table, "c_1")
    reservation = fx.reservation("c_1", hold_until="2026-11-24T23:30:00.000000Z")
    table.put(reservation)
    ready, _ = Fanout().fan_out(reservation, None, now=NOON)
    assert queued(sqs, stack, "email") == [{"customer_id": "c_1", "message_id": ready.message_id}]
    # When the job runs at the reminder's time, it moves to the end of quiet hours instead
    (outcome,) = release_due(datetime(2026, 11, 24, 21, 35, tzinfo=UTC))
    assert (outcome.intent, outcome.status, outcome.reason) == (
        "reservation_expiring",
        "deferred",
        "quiet_hours",
    )
    message = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert message is not None
    assert message["gsi1pk"] == "NOTIFDUE#2026-11-25T08"
    assert queued(sqs, stack, "email") == []
    assert release_due(datetime(2026, 11, 24, 21, 50, tzinfo=UTC)) == []


def test_capped_at_release_time_is_suppressed(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_MARKETING_WEEKLY_CAP", "1")
    get_settings.cache_clear()
    fx.seed_customer(table, "c_1")
    deferred = Fanout().fan_out(fx.points_expiring("c_1", "2026-11-20"), None, now=NIGHT)[0]
    later = Fanout().fan_out(
        fx.points_expiring("c_1", "2026-11-21"), None, now=datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    )
    assert (deferred.status, later[0].status) == ("deferred", "queued")  # the later one took the only room
    (outcome,) = release_due(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    assert outcome.message_id == deferred.message_id
    assert (outcome.status, outcome.reason) == ("suppressed", "capped")


# -- audiences --------------------------------------------------------------------------------------
def test_back_in_stock_reaches_every_subscriber_of_the_sku_at_that_location(table: Table) -> None:
    for cid in ("c_1", "c_2"):
        fx.seed_customer(table, cid)
        table.put(fx.alert(cid))
    fx.seed_customer(table, "c_3")
    table.put(fx.alert("c_3", location_id="STORE-99"))
    outcomes = Fanout().fan_out(fx.back_in_stock(), None, now=NOON)
    assert sorted((o.customer_id, o.intent, o.status) for o in outcomes) == [
        ("c_1", "back_in_stock", "queued"),
        ("c_2", "back_in_stock", "queued"),
    ]


def test_order_status_and_welcome(table: Table) -> None:
    profile = fx.seed_customer(table, "c_1", locale="en")
    (welcome,) = Fanout().fan_out(profile, None, now=NOON)
    (order,) = Fanout().fan_out(fx.order_event("e1", customer_id="c_1"), fx.order_event("e1"), now=NOON)
    assert (welcome.intent, welcome.status) == ("welcome", "queued")
    assert (order.intent, order.status) == ("order_status", "queued")


# -- the handler with stream events -----------------------------------------------------------------
def test_handler_fans_out_a_stream_batch_and_dedupes_replays(
    table: Table, sqs: Any, stack: Resolver, daytime: None, lambda_context: LambdaContext
) -> None:
    # Given two customers and a batch with a points change, an unrelated item and a back-in-stock signal
    fx.seed_customer(table, "c_1", preferred="sms")
    fx.seed_customer(table, "c_2", granted={"email": False})
    table.put(fx.alert("c_1"))
    new, old = earn("c_2")
    event = stream_event(
        stream_record(*earn("c_1"), seq=1),
        stream_record({"pk": "CUST#c_1", "sk": "PTS#BALANCE", "entity": "points_balance"}, seq=2),
        stream_record(fx.back_in_stock(), seq=3),
        stream_record(new, old, seq=4),
    )
    handler = load_function("fanout_notifications").handler
    # When the batch is handled, then replayed as a whole (a bisected retry)
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    # Then c_1 got one SMS message per intent (a replay re-queues a still-queued message: senders
    # send each message id once), c_2 none (no consent), and replays were recorded as duplicates
    sms = queued(sqs, stack, "sms")
    assert {m["customer_id"] for m in sms} == {"c_1"}
    assert len({m["message_id"] for m in sms}) == 2
    assert queued(sqs, stack, "email") == []
    reasons = sorted(str(e.get("reason")) for e in timeline(table, "c_1"))
    assert reasons == ["None", "None", "duplicate", "duplicate"]
    assert [e["reason"] for e in timeline(table, "c_2") if e["reason"] != "duplicate"] == ["no_consent"]


def test_handler_reports_the_failing_record_only(
    table: Table,
    stack: Resolver,
    daytime: None,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fx.seed_customer(table, "c_1")
    monkeypatch.setenv("NOTIFY_EMAIL_QUEUE_URL", "")  # the email queue is unreachable: a transient failure
    get_settings.cache_clear()
    event = stream_event(
        stream_record(*earn("c_1"), seq=7),
        stream_record({"pk": "X", "sk": "Y", "entity": "points_balance"}, seq=8),
    )
    result = load_function("fanout_notifications").handler(event, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": f"{7:021d}"}]}


def test_scheduled_job_handler_releases_due_messages(
    table: Table, sqs: Any, stack: Resolver, daytime: None, lambda_context: LambdaContext
) -> None:
    fx.seed_customer(table, "c_1")
    past = datetime.now(UTC) - timedelta(hours=1)
    message_id = "m-due"
    table.put(
        {
            "pk": "CUST#c_1",
            "sk": f"NOTIF#MSG#{message_id}",
            "entity": "notification",
            "message_id": message_id,
            "customer_id": "c_1",
            "intent": "welcome",
            "klass": "transactional",
            "locale": "es",
            "data": {"first_name": "Ana"},
            "channels": ["email"],
            "addresses": {"email": "ana@example.com"},
            "status": "deferred",
            "reason": "quiet_hours",
            "due": past.isoformat(),
            "created_at": past.isoformat(),
            "updated_at": past.isoformat(),
            "tl_sk": f"TL#{past.isoformat()}#notif-{message_id}",
            "gsi1pk": f"NOTIFDUE#{past.strftime('%Y-%m-%dT%H')}",
            "gsi1sk": f"{past.isoformat()}#{message_id}",
        }
    )
    scheduled = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}
    result = load_function("send_deferred_notifications").handler(scheduled, lambda_context)
    assert result["counts"] == {"queued": 1}
    assert queued(sqs, stack, "email") == [{"customer_id": "c_1", "message_id": message_id}]


# -- digests ----------------------------------------------------------------------------------------
@pytest.fixture
def hourly_digest(monkeypatch: pytest.MonkeyPatch, stack: Resolver) -> None:
    monkeypatch.setenv("NOTIFY_DIGEST_MINUTES", "60")
    get_settings.cache_clear()


def test_marketing_intents_within_the_window_become_one_digest(
    table: Table, sqs: Any, stack: Resolver, hourly_digest: None
) -> None:
    # Given digests of an hour, and three marketing intents plus one transactional within 11:00-12:00
    fx.seed_customer(table, "c_1")
    table.put(fx.alert("c_1"))
    fanout = Fanout()
    t = NOON + timedelta(minutes=5)
    marketing = [
        *fanout.fan_out(fx.points_expiring("c_1", "2026-11-20"), None, now=t),
        *fanout.fan_out(fx.back_in_stock(), None, now=t + timedelta(minutes=10)),
        *fanout.fan_out(
            fx.points_expiring("c_1", "2026-11-21", points=50), None, now=t + timedelta(minutes=20)
        ),
    ]
    (earned,) = fanout.fan_out(*earn("c_1"), now=t)
    # Then the transactional one goes at once, the marketing ones wait for the end of the window
    assert earned.status == "queued"
    assert [(o.status, o.reason) for o in marketing] == [("deferred", "digest")] * 3
    assert len(queued(sqs, stack, "email")) == 1
    # When the job runs at 12:00
    (digest,) = release_due(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    # Then ONE digest is queued, charged once to the marketing budget, and each member says so
    assert (digest.intent, digest.status, digest.channel) == ("digest", "queued", "email")
    assert queued(sqs, stack, "email") == [{"customer_id": "c_1", "message_id": digest.message_id}]
    budget = fx.week_budget(table)
    assert (budget["marketing"], budget["total"]) == (1, 2)
    for member in marketing:
        item = table.get("CUST#c_1", f"NOTIF#MSG#{member.message_id}")
        assert item is not None
        assert (item["status"], item["reason"], item["digest_id"]) == (
            "suppressed",
            "digested",
            digest.message_id,
        )
    assert release_due(datetime(2026, 11, 23, 12, 15, tzinfo=UTC)) == []
    # And the sender renders the three facts in one email
    from loyalty.notify.sender import send

    assert (
        send("c_1", digest.message_id, "email", now=datetime(2026, 11, 23, 12, 1, tzinfo=UTC)).status
        == "sent"
    )
    (sent,) = [o for o in table.query_all("CUST#c_1", sk_prefix="NOTIF#OUT#") if o["intent"] == "digest"]
    assert sent["content"]["subject"] == "Ana, tienes 3 novedades"
    assert "SKU-1 vuelve a estar disponible" in sent["content"]["text"]
    assert "50 puntos caducan" in sent["content"]["text"]


def test_a_lone_marketing_intent_in_the_window_is_sent_as_itself(
    table: Table, sqs: Any, stack: Resolver, hourly_digest: None
) -> None:
    fx.seed_customer(table, "c_1")
    (deferred,) = Fanout().fan_out(fx.points_expiring("c_1"), None, now=NOON + timedelta(minutes=30))
    assert (deferred.status, deferred.reason) == ("deferred", "digest")
    (released,) = release_due(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert (released.message_id, released.intent, released.status) == (
        deferred.message_id,
        "points_expiring",
        "queued",
    )


def test_digest_windows_align_to_the_clock() -> None:
    from loyalty.notify.fanout import digest_due

    assert digest_due(datetime(2026, 11, 23, 11, 5, tzinfo=UTC), 60) == datetime(
        2026, 11, 23, 12, 0, tzinfo=UTC
    )
    assert digest_due(datetime(2026, 11, 23, 12, 0, tzinfo=UTC), 60) == datetime(
        2026, 11, 23, 13, 0, tzinfo=UTC
    )
    assert digest_due(datetime(2026, 11, 23, 23, 50, tzinfo=UTC), 30) == datetime(
        2026, 11, 24, 0, 0, tzinfo=UTC
    )


def test_push_goes_to_the_registered_push_token_when_there_is_one(table: Table) -> None:
    fx.seed_customer(table, "c_1", granted={"push": True}, preferred="push", contacts={})
    table.put(
        {
            "pk": "CUST#c_1",
            "sk": "ID#device_id#dev-1",
            "entity": "identity",
            "type": "device_id",
            "value": "dev-1",
            "push_token": "fcm-token-1",
        }
    )
    (outcome,) = Fanout().fan_out(*earn("c_1"), now=NOON)
    message = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert message is not None
    assert message["addresses"] == {"push": "fcm-token-1"}
