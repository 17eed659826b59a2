"""The fan-out's stream filter (template.yaml) lets through what the catalogue reacts to, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.filters import matches_any
from devstack.template import Resolver, load
from loyalty.notify.catalogue import WATCHED_ENTITIES, match
from loyalty.store.table import Table
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, load_event, load_function
from tests.support.streams import stream_record

TEMPLATE = load()
FILTERS = [
    json.loads(f["Pattern"])
    for f in TEMPLATE["Resources"]["FanoutNotificationsFunction"]["Properties"]["Events"]["TableChanges"][
        "Properties"
    ]["FilterCriteria"]["Filters"]
]

WANTED = [
    (fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending")),
    (fx.tier_change("c_1"), None),
    (fx.points_expiring("c_1"), None),
    (fx.reservation("c_1"), None),
    (fx.back_in_stock(), None),
    (fx.order_event("e1", customer_id="c_1"), fx.order_event("e1")),
    ({"pk": "CUST#c_1", "sk": "PROFILE", "entity": "profile", "customer_id": "c_1"}, None),
]
IGNORED = [
    ({"pk": "CUST#c_1", "sk": "PTS#BALANCE", "entity": "points_balance"}, None),
    ({"pk": "CUST#c_1", "sk": "NOTIF#MSG#m", "entity": "notification"}, None),  # never our own items
    ({"pk": "CUST#c_1", "sk": "TL#x#notif-m", "entity": "notification_log"}, None),
    (fx.order_event("e2"), None),  # recorded, not attributed
    (
        {"pk": "CUST#c_1", "sk": "PROFILE", "entity": "profile", "first_name": "A"},
        {"pk": "CUST#c_1", "sk": "PROFILE", "entity": "profile"},
    ),
]


@pytest.mark.parametrize(("new", "old"), WANTED)
def test_the_filter_passes_every_change_the_catalogue_turns_into_an_intent(
    new: dict[str, Any], old: dict[str, Any] | None
) -> None:
    assert match(new, old), new["entity"]
    assert matches_any(FILTERS, stream_record(new, old))


@pytest.mark.parametrize(("new", "old"), IGNORED)
def test_the_filter_drops_what_the_fan_out_ignores(new: dict[str, Any], old: dict[str, Any] | None) -> None:
    assert not match(new, old)
    assert not matches_any(FILTERS, stream_record(new, old))


def test_every_watched_entity_is_in_the_filter() -> None:
    text = json.dumps(FILTERS)
    assert all(f'"{entity}"' in text for entity in WATCHED_ENTITIES)


def test_sample_events_run_through_the_handlers(
    stack: Resolver, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loyalty.settings import get_settings

    monkeypatch.setenv("QUIET_HOURS_START", "0")
    monkeypatch.setenv("QUIET_HOURS_END", "0")
    monkeypatch.setenv("NOTIFY_CHANNEL", "email")
    get_settings.cache_clear()
    fx.seed_customer(Table(), "c_demo", preferred="email")
    fanout = load_function("fanout_notifications").handler
    assert fanout(load_event("stream/fanout_notifications.json"), lambda_context) == {"batchItemFailures": []}
    sender = load_function("send_notification").handler
    # the sample names a message that does not exist here (as after an erasure): acknowledged, nothing sent
    result = sender(load_event("sqs/send_notification.json"), lambda_context)
    assert result == {"batchItemFailures": []}
    job = load_function("send_deferred_notifications").handler
    assert job(load_event("schedule/send_deferred_notifications.json"), lambda_context)["released"] == 0


# -- least privilege that is still enough -----------------------------------------------------------
_TX_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class DynamoCalls:
    """Records the DynamoDB actions (IAM names) the code under test performs."""

    def __init__(self) -> None:
        self.actions: set[str] = set()
        self.paused = False
        from loyalty import aws

        aws.client("dynamodb").meta.events.register("provide-client-params.dynamodb.*", self._seen)

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.paused:
            return
        if model.name == "TransactWriteItems":
            self.actions |= {_TX_ACTIONS[next(iter(a))] for a in params["TransactItems"]}
        else:
            self.actions.add(model.name)


def _allowed(function: str) -> set[str]:
    out: set[str] = set()
    for policy in TEMPLATE["Resources"][function]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            out |= {a.split(":", 1)[1] for a in actions if a.startswith("dynamodb:")}
    return out


def test_each_notification_function_may_do_what_its_code_does(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from loyalty.notify.fanout import Fanout, release_due
    from loyalty.notify.sender import send
    from loyalty.notify.views import notification_view
    from loyalty.settings import get_settings

    monkeypatch.setenv("NOTIFY_DIGEST_MINUTES", "60")
    get_settings.cache_clear()
    table = Table()
    fx.seed_customer(table, "c_1", granted={"email": True, "sms": True}, preferred="email")
    table.put(fx.alert("c_1"))
    noon, night = datetime(2026, 11, 23, 11, tzinfo=UTC), datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    lot = (fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"))

    calls = DynamoCalls()
    fanout = Fanout()
    queued = fanout.fan_out(*lot, now=noon)[0]
    fanout.fan_out(*lot, now=noon)  # duplicate
    fanout.fan_out(fx.back_in_stock(), None, now=noon)
    fanout.fan_out(fx.points_expiring("c_1"), None, now=noon)
    fanout.fan_out(fx.tier_change("c_1"), None, now=night)
    assert calls.actions <= _allowed("FanoutNotificationsFunction"), calls.actions

    calls.actions.clear()
    release_due(noon + timedelta(hours=1))  # the digest
    release_due(datetime(2026, 11, 24, 8, tzinfo=UTC))  # quiet hours over
    assert calls.actions <= _allowed("SendDeferredNotificationsFunction"), calls.actions

    calls.actions.clear()
    send("c_1", queued.message_id, "email", now=noon)
    calls.paused = True  # the test's own set-up: a queued message, then every consent withdrawn
    tier = fanout.fan_out(fx.tier_change("c_1", "silver", "gold"), None, now=noon)[0]
    fx.seed_customer(table, "c_1", granted={}, preferred="email")
    calls.paused = False
    assert send("c_1", tier.message_id, str(tier.channel), now=noon).status == "withdrawn"
    for function in ("SendEmailFunction", "SendSmsFunction", "SendPushFunction", "SendWhatsAppFunction"):
        assert calls.actions <= _allowed(function), (function, calls.actions)

    calls.actions.clear()
    notification_view("c_1")
    assert calls.actions <= _allowed("NotificationsApiFunction"), calls.actions
