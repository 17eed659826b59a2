"""Provider feedback: hard bounces mark an address undeliverable (the fan-out falls back), complaints
and SMS STOP opt out through consent events, the router sends ``message.bounced`` here.

Fixtures (events/sqs/, SQS records whose body is the SNS envelope SNS delivers to SQS):
- ``message_feedback_ses_bounce.json`` / ``..._ses_complaint.json``: the Bounce and Complaint
  records of "Examples of event data that Amazon SES publishes to Amazon SNS"
  (docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-examples.html), addresses,
  times and the configuration set changed to ours.
- ``message_feedback_inbound_sms.json``: "Example of a two-way SMS message payload for Amazon SNS
  topics" (docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html), numbers
  Spanish and the body ``BAJA``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty import aws
from loyalty.eventlog.store import EventLog
from loyalty.identity.resolve import Resolver as IdentityResolver
from loyalty.models.events import (
    Channel,
    ChannelEvent,
    DeliveryPayload,
    EventType,
    ProfilePayload,
)
from loyalty.models.identifiers import Identifier, IdentifierType
from loyalty.notify.fanout import Fanout
from loyalty.notify.feedback import handle
from loyalty.notify.store import address_key
from loyalty.routing.router import RoutedEvent, plan
from loyalty.settings import get_settings
from loyalty.store.table import Table
from tests.conftest import drain
from tests.support import identity as idfx
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, load_event, load_function, sqs_event

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
ADDRESS, PHONE = "ana.garcia@correo.es", "+34611222333"  # the fixtures' recipient


@pytest.fixture
def table(stack: Resolver) -> Table:
    return Table()


def run(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = load_function("message_feedback").handler(event, LambdaContext())
    return result


def consent_events() -> list[ChannelEvent]:
    """consent.changed events recorded for today or the fixtures' day (events are indexed by day)."""
    found: list[ChannelEvent] = []
    for day in sorted({datetime.now(UTC).date(), NOON.date()}):
        page, _ = EventLog().of_day(day, limit=100)
        found += [e for e in page if e.type == EventType.CONSENT_CHANGED]
    return found


def statements(event: ChannelEvent) -> list[tuple[str, bool, str | None, str]]:
    assert isinstance(event.payload, ProfilePayload)
    return [(c.channel, c.granted, c.topic, c.source) for c in event.payload.consents]


def seed(table: Table, customer_id: str = "c_1") -> None:
    fx.seed_customer(
        table,
        customer_id,
        granted={"email": True, "sms": True},
        preferred="email",
        contacts={"email": ADDRESS, "phone": PHONE},
    )


# -- bounces ----------------------------------------------------------------------------------------
def test_an_ses_hard_bounce_marks_the_address_and_the_next_message_falls_back_to_sms(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a customer who prefers email and also consented to SMS
    seed(table)
    # When SES reports a permanent bounce of her address (delivered twice, as SNS may)
    event = load_event("sqs/message_feedback_ses_bounce.json")
    assert run(event) == {"batchItemFailures": []}
    assert run(event) == {"batchItemFailures": []}
    # Then the address is marked once, keyed by channel and address (not by customer)
    marked = table.get(*address_key("email", ADDRESS.upper()))
    assert marked is not None
    assert (marked["provider"], marked["channel"]) == ("ses", "email")
    assert "5.1.1" in marked["reason"]
    # And the next message goes by SMS, the next consented channel
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    assert (outcome.status, outcome.channel) == ("queued", "sms")
    assert len(drain(sqs, stack.refs["NotifySmsQueue"])) == 1


def test_what_the_template_topics_deliver_to_the_feedback_queue_is_handled(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given the template's SES events and inbound SMS topics, subscribed to the feedback queue
    seed(table)
    sns = aws.client("sns")
    # When SES and End User Messaging publish their documented payloads (the fixtures' Message)
    for name, topic in (
        ("message_feedback_ses_bounce", "NotifySesEventsTopic"),
        ("message_feedback_inbound_sms", "NotifyInboundSmsTopic"),
    ):
        payload = json.loads(load_event(f"sqs/{name}.json")["Records"][0]["body"])["Message"]
        sns.publish(TopicArn=stack.refs[topic], Message=payload)
    # Then SNS delivered them as the template subscribes (no RawMessageDelivery: the SNS envelope)
    bodies = [m["Body"] for m in drain(sqs, stack.refs["NotifyFeedbackQueue"])]
    assert [json.loads(b)["Type"] for b in bodies] == ["Notification", "Notification"]
    # And the function applies both: the address is marked, the number opted out of SMS
    assert run(sqs_event(bodies)) == {"batchItemFailures": []}
    assert table.get(*address_key("email", ADDRESS)) is not None
    assert [statements(e) for e in consent_events()] == [[("sms", False, None, "sms:stop")]]


def test_a_soft_bounce_changes_nothing(table: Table, stack: Resolver) -> None:
    seed(table)
    event = load_event("sqs/message_feedback_ses_bounce.json")
    envelope = json.loads(event["Records"][0]["body"])
    record = json.loads(envelope["Message"])
    record["bounce"]["bounceType"] = "Transient"
    envelope["Message"] = json.dumps(record)
    event["Records"][0]["body"] = json.dumps(envelope)
    assert run(event) == {"batchItemFailures": []}
    assert table.get(*address_key("email", ADDRESS)) is None
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    assert outcome.channel == "email"


def ses_delivery(at: str) -> dict[str, Any]:
    """An SES ``Delivery`` record (event publishing, through SNS) to the fixtures' address at ``at``."""
    event: dict[str, Any] = load_event("sqs/message_feedback_ses_bounce.json")
    envelope = json.loads(event["Records"][0]["body"])
    bounce = json.loads(envelope["Message"])
    delivery = {
        "eventType": "Delivery",
        "mail": bounce["mail"],
        "delivery": {
            "timestamp": at,
            "processingTimeMillis": 546,
            "recipients": [ADDRESS],
            "smtpResponse": "250 ok:  Message 64111812 accepted",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        },
    }
    envelope["Message"] = json.dumps(delivery)
    event["Records"][0]["body"] = json.dumps(envelope)
    return event


def test_a_later_ses_delivery_lifts_the_mark_and_email_is_used_again(table: Table, stack: Resolver) -> None:
    # Given her address hard-bounced at 11:05
    seed(table)
    run(load_event("sqs/message_feedback_ses_bounce.json"))
    # When SES reports an older delivery (sent before the bounce), nothing changes
    assert run(ses_delivery("2026-11-23T11:00:00.000Z")) == {"batchItemFailures": []}
    assert table.get(*address_key("email", ADDRESS)) is not None
    # When a later message to it is delivered (reported twice, as SNS may)
    assert run(ses_delivery("2026-11-24T09:00:00.000Z")) == {"batchItemFailures": []}
    assert handle(ses_delivery("2026-11-24T09:00:00.000Z")["Records"][0]["body"]).count == 0
    # Then the mark is gone and the next message goes by email, her preferred channel
    assert table.get(*address_key("email", ADDRESS)) is None
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    assert (outcome.status, outcome.channel) == ("queued", "email")


def test_with_every_address_bounced_the_message_is_suppressed_undeliverable(
    table: Table, stack: Resolver
) -> None:
    fx.seed_customer(table, "c_1", granted={"email": True}, contacts={"email": ADDRESS})
    run(load_event("sqs/message_feedback_ses_bounce.json"))
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    assert (outcome.status, outcome.reason) == ("suppressed", "undeliverable")


def test_a_routed_message_bounced_event_marks_the_whatsapp_number(table: Table, stack: Resolver) -> None:
    # Given the connectors' message.bounced event for a WhatsApp number, as the router queues it
    event = ChannelEvent(
        event_id=str(uuid.uuid4()),
        channel=Channel.CHAT,
        type=EventType.MESSAGE_BOUNCED,
        occurred_at=NOON,
        source_event_id="wamid.HBgLMzQ2MTEyMjIzMzMVAgARGBI",
        identifiers=[Identifier(type=IdentifierType.PHONE, value=PHONE)],
        payload=DeliveryPayload(
            channel="whatsapp", address="34611222333", permanent=True, reason="131026", provider="whatsapp"
        ),
    )
    routed = [
        m for url, m in plan(_event_item(event), None, get_settings()) if url.endswith("notify-feedback")
    ]
    assert len(routed) == 1
    # When the feedback function handles it
    body = routed[0].model_dump_json()
    assert handle(body).kind == "undeliverable"
    # Then that number is undeliverable on WhatsApp only: SMS to it still goes
    assert table.get(*address_key("whatsapp", PHONE)) is not None
    assert table.get(*address_key("sms", PHONE)) is None
    fx.seed_customer(
        table, "c_1", granted={"whatsapp": True, "sms": True}, preferred="whatsapp", contacts={"phone": PHONE}
    )
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    assert outcome.channel == "sms"


def _event_item(event: ChannelEvent) -> dict[str, Any]:
    from loyalty.eventlog.store import to_item

    return to_item(event, 30)


def test_a_transient_routed_bounce_is_ignored(stack: Resolver) -> None:
    event = ChannelEvent(
        event_id="e1",
        channel=Channel.EMAIL,
        type=EventType.MESSAGE_BOUNCED,
        occurred_at=NOON,
        source_event_id="sg-1",
        payload=DeliveryPayload(channel="email", address=ADDRESS, permanent=False, provider="sendgrid"),
    )
    assert handle(RoutedEvent(stage="recorded", event=event).model_dump_json()).kind == "ignored"


# -- complaints and STOP ----------------------------------------------------------------------------
def test_a_complaint_opts_the_address_out_of_marketing_email_only(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a customer created by identity with email consent
    created = idfx.event(
        ("email", ADDRESS),
        profile={"first_name": "Ana", "timezone": "Europe/Madrid"},
        consents=[("email", True)],
    )
    cid = str(IdentityResolver().resolve(created).customer_id)
    # When SES reports her complaint, twice
    event = load_event("sqs/message_feedback_ses_complaint.json")
    assert run(event) == {"batchItemFailures": []}
    assert run(event) == {"batchItemFailures": []}
    # Then one consent event refuses every marketing topic on email
    (complaint,) = consent_events()
    assert statements(complaint) == [
        ("email", False, "points", "ses:complaint"),
        ("email", False, "offers", "ses:complaint"),
        ("email", False, "stock_alerts", "ses:complaint"),
    ]
    # And once identity applies it, marketing email is suppressed but transactional email is sent
    IdentityResolver().resolve(complaint)
    (marketing,) = Fanout().fan_out(fx.points_expiring(cid), None, now=NOON)
    assert (marketing.status, marketing.reason) == ("suppressed", "unsubscribed")
    (transactional,) = Fanout().fan_out(
        fx.lot(cid, "T1", "available"), fx.lot(cid, "T1", "pending"), now=NOON
    )
    assert (transactional.status, transactional.channel) == ("queued", "email")
    drain(sqs, stack.refs["NotifyEmailQueue"])


def test_an_sms_baja_opts_the_number_out_of_sms(table: Table, stack: Resolver) -> None:
    created = idfx.event(("phone", PHONE), profile={"first_name": "Ana"}, consents=[("sms", True)])
    cid = str(IdentityResolver().resolve(created).customer_id)
    event = load_event("sqs/message_feedback_inbound_sms.json")
    assert run(event) == {"batchItemFailures": []}
    assert run(event) == {"batchItemFailures": []}
    (stop,) = consent_events()
    assert statements(stop) == [("sms", False, None, "sms:stop")]
    IdentityResolver().resolve(stop)
    profile = table.get(f"CUST#{cid}", "PROFILE")
    assert profile is not None
    assert profile["consents"]["sms"]["granted"] is False


@pytest.mark.parametrize("text", ["Hola, ¿a qué hora abrís?", "", "STOPPED by the shop"])
def test_other_replies_are_not_opt_outs(stack: Resolver, text: str) -> None:
    event = load_event("sqs/message_feedback_inbound_sms.json")
    envelope = json.loads(event["Records"][0]["body"])
    envelope["Message"] = json.dumps({**json.loads(envelope["Message"]), "messageBody": text})
    event["Records"][0]["body"] = json.dumps(envelope)
    assert run(event) == {"batchItemFailures": []}
    assert consent_events() == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"Type": "Notification", "Message": "{"})])
def test_poison_fails_the_record_so_it_ends_in_the_dlq(stack: Resolver, body: str) -> None:
    event = load_event("sqs/message_feedback_ses_bounce.json")
    event["Records"][0]["body"] = body
    assert run(event) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
