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
