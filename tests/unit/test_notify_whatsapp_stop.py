"""A WhatsApp STOP / BAJA is confirmed once, on WhatsApp, in the customer's language (issue 15).

The path is the real one: Meta's sample webhook (text changed to STOP) -> the WhatsApp connector
-> the event log -> identity's attribution (the stream change the fan-out sees) -> the fan-out ->
the sender (outbox). The customer has just opted out of WhatsApp: the confirmation still goes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.template import Resolver
from loyalty.eventlog.store import EventLog, event_key
from loyalty.ingest.providers import Delivery
from loyalty.ingest.providers.whatsapp import normalise
from loyalty.models.events import ChannelEvent, EventType
from loyalty.notify.adapters import OutboxProvider
from loyalty.notify.fanout import Fanout, Outcome
from loyalty.notify.sender import send
from loyalty.store.table import Item, Table
from tests.support import notify as fx
from tests.support.races import race

SAMPLE = Path(__file__).parents[2] / "events" / "webhooks" / "whatsapp" / "text_message.json"
PHONE = "+16315551181"  # the sample's sender (wa_id)


@pytest.fixture
def table(stack: Resolver) -> Table:
    return Table()


def stop_event(text: str = "STOP", wamid: str = "ABGGFlA5Fpa") -> ChannelEvent:
    """The connector's ``consent.changed`` for Meta's sample text message saying ``text``."""
    document = json.loads(SAMPLE.read_text())
    message = document["entry"][0]["changes"][0]["value"]["messages"][0]
    message["text"]["body"], message["id"] = text, wamid
    delivery = Delivery(provider="whatsapp", body=b"", received_at=datetime.now(UTC))
    (opt_out,) = [e for e in normalise(document, delivery) if e.type is EventType.CONSENT_CHANGED]
    return opt_out


def attributed(table: Table, event: ChannelEvent, customer_id: str = "c_1") -> tuple[Item, Item]:
    """(new, old) images of the event's attribution, as the table stream carries them."""
    log = EventLog(table)
    log.record(event)
    old = table.get(*event_key(event.event_id))
    log.attribute(event.event_id, customer_id)
    new = table.get(*event_key(event.event_id))
    assert old is not None
    assert new is not None
    return new, old


def opted_out(table: Table, locale: str = "en") -> None:
    """Identity applied the STOP already: WhatsApp is refused on the profile."""
    fx.seed_customer(
        table,
        "c_1",
        granted={"whatsapp": False, "email": True},
        preferred="whatsapp",
        locale=locale,
        contacts={"phone": PHONE, "email": "ana@example.com"},
    )


def outbox(table: Table) -> list[Item]:
    return list(table.query_all("CUST#c_1", sk_prefix="NOTIF#OUT#"))


@pytest.mark.parametrize(("locale", "words"), [("en", "Done, Ana"), ("es", "Hecho, Ana")])
def test_a_stop_is_confirmed_once_on_whatsapp_in_the_customer_language(
    table: Table, locale: str, words: str
) -> None:
    # Given a customer whose WhatsApp STOP identity has just applied (WhatsApp refused)
    opted_out(table, locale)
    event = stop_event()
    new, old = attributed(table, event)
    # When the fan-out sees the attribution, shortly after the inbound message
    (outcome,) = Fanout().fan_out(new, old, now=event.occurred_at + timedelta(minutes=1))
    # Then one confirmation is queued on WhatsApp, to the number that wrote
    assert outcome.intent == "whatsapp_stop_confirmed"
    assert (outcome.status, outcome.channel) == ("queued", "whatsapp")
    message = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert message is not None
    assert message["addresses"] == {"whatsapp": PHONE}
    # And the sender sends it although WhatsApp consent is refused: it confirms that refusal
    result = send("c_1", outcome.message_id, "whatsapp", provider=OutboxProvider())
    assert result.status == "sent"
    (sent,) = outbox(table)
    assert sent["channel"] == "whatsapp"
    assert sent["address"] == PHONE
    assert sent["content"]["text"].startswith(words)
    assert "template" not in sent["content"]
    # And it is recorded like any other message: sent, with its timeline entry
    log = [i for i in table.query_all("CUST#c_1", sk_prefix="TL#") if i["entity"] == "notification_log"]
    assert [(i["intent"], i["status"]) for i in log] == [("whatsapp_stop_confirmed", "sent")]
    # And a second delivery to the sender sends nothing more
    assert send("c_1", outcome.message_id, "whatsapp", provider=OutboxProvider()).status == "already_done"
    assert len(outbox(table)) == 1


def test_a_duplicate_delivery_of_the_stop_confirms_once(table: Table) -> None:
    # Given the STOP delivered twice by Meta (the same wamid): one event, attributed once
    opted_out(table)
    event = stop_event()
    new, old = attributed(table, event)
    again = stop_event()
    assert again.event_id == event.event_id
    assert not EventLog(table).put(again)
    # When the attribution's stream record is replayed
    now = event.occurred_at + timedelta(minutes=1)
    first = Fanout().fan_out(new, old, now=now)
    second = Fanout().fan_out(new, old, now=now)
    # Then the replay finds the same message (its id derives from the inbound message id)
    assert [o.message_id for o in first] == [o.message_id for o in second]
    assert [(o.status, o.reason) for o in first] == [("queued", None)]
    assert [(o.status, o.reason) for o in second] == [("suppressed", "duplicate")]
    messages = list(table.query_all("CUST#c_1", sk_prefix="NOTIF#MSG#"))
    assert len(messages) == 1


def test_concurrent_fan_outs_of_one_stop_create_one_message(table: Table) -> None:
    opted_out(table)
    event = stop_event()
    new, old = attributed(table, event)
    now = event.occurred_at + timedelta(minutes=1)
    results = race(8, lambda _: Fanout().fan_out(new, old, now=now))
    assert all(isinstance(r, list) for r in results), results
    ids = {o.message_id for r in results for o in r}
    assert sorted(o.status for r in results for o in r) == ["queued"] + ["suppressed"] * 7
    assert len(ids) == 1
    assert len(list(table.query_all("CUST#c_1", sk_prefix="NOTIF#MSG#"))) == 1
    # and however many senders race for it, one confirmation goes out
    (message_id,) = ids
    sent = race(4, lambda _: send("c_1", message_id, "whatsapp", provider=OutboxProvider()))
    assert [r.status for r in sent if not isinstance(r, Exception)].count("sent") == 1
    assert len(outbox(table)) == 1


def test_two_stops_are_two_inbound_messages_and_two_confirmations(table: Table) -> None:
    opted_out(table)
    first, second = stop_event("STOP", "wamid.A"), stop_event("baja", "wamid.B")
    outcomes: list[Outcome] = []
    for event in (first, second):
        new, old = attributed(table, event)
        outcomes += Fanout().fan_out(new, old, now=event.occurred_at + timedelta(minutes=1))
    assert len({o.message_id for o in outcomes}) == 2


def test_after_the_customer_service_window_no_free_form_reply_is_sent(table: Table) -> None:
    # Given a STOP whose attribution reaches the fan-out more than 24 h after the message
    opted_out(table)
    event = stop_event()
    new, old = attributed(table, event)
    (outcome,) = Fanout().fan_out(new, old, now=event.occurred_at + timedelta(hours=24, minutes=1))
    # Then the confirmation is suppressed (a free-form text would be refused), and recorded so
    assert (outcome.status, outcome.reason) == ("suppressed", "window_closed")


def test_other_consent_changes_and_other_events_are_not_confirmed(table: Table) -> None:
    opted_out(table)
    new, old = attributed(table, stop_event())
    data = json.loads(new["data"])
    data["payload"]["consents"][0]["source"] = "preference_center"
    not_stop = {**new, "data": json.dumps(data)}
    assert Fanout().fan_out(not_stop, old, now=datetime.now(UTC)) == []
    assert Fanout().fan_out(new, new, now=datetime.now(UTC)) == []  # already attributed: not news
