"""Senders: outbox delivery once per message, retries, channel fallback, DLQ, provider adapters."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from devstack.template import Resolver
from loyalty import aws
from loyalty.errors import TransientError
from loyalty.notify import adapters
from loyalty.notify.adapters import Delivery, OutboxProvider, ProviderError
from loyalty.notify.fanout import Fanout
from loyalty.notify.sender import SendFailed, send
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table
from tests.conftest import drain
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, load_function, sqs_event

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


class FlakyProvider:
    """Fails ``failures`` times (permanently or not), then delivers through the outbox."""

    def __init__(self, failures: int, *, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.calls: list[str] = []

    def send(self, channel: str, address: str, content: Mapping[str, Any], message: Item) -> Delivery:
        self.calls.append(channel)
        if len(self.calls) <= self.failures:
            raise ProviderError(f"{channel} provider down", permanent=self.permanent)
        return OutboxProvider().send(channel, address, content, message)


@pytest.fixture
def table(stack: Resolver) -> Table:
    return Table()


def queue_bodies(sqs: Any, stack: Resolver, logical: str) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain(sqs, stack.refs[logical])]


def outbox(table: Table, customer_id: str) -> list[Item]:
    return list(table.query_all(f"CUST#{customer_id}", sk_prefix="NOTIF#OUT#"))


def message_of(table: Table, customer_id: str, message_id: str) -> Item:
    item = table.get(f"CUST#{customer_id}", f"NOTIF#MSG#{message_id}")
    assert item is not None
    return item


def queued_message(table: Table, preferred: str = "whatsapp", **kwargs: Any) -> str:
    granted = {"email": True, "sms": True, "whatsapp": True}
    fx.seed_customer(table, "c_1", granted=granted, preferred=preferred, **kwargs)
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    assert outcome.status == "queued"
    return outcome.message_id


# -- outbox, once -----------------------------------------------------------------------------------
def test_the_email_sender_writes_one_outbox_message_even_when_redelivered(
    table: Table, sqs: Any, stack: Resolver, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a points-earned message queued on email (DeliveryMode=outbox locally)
    message_id = queued_message(table, preferred="email")
    (body,) = queue_bodies(sqs, stack, "NotifyEmailQueue")
    monkeypatch.setenv("NOTIFY_CHANNEL", "email")
    get_settings.cache_clear()
    handler = load_function("send_notification").handler
    # When the email sender handles it twice (an SQS redelivery)
    assert handler(sqs_event([json.dumps(body)]), lambda_context) == {"batchItemFailures": []}
    assert handler(sqs_event([json.dumps(body)]), lambda_context) == {"batchItemFailures": []}
    # Then exactly one outbox item holds the Spanish email, and the message and timeline say sent
    (sent,) = outbox(table, "c_1")
    assert (sent["channel"], sent["address"], sent["intent"]) == ("email", "ana@example.com", "points_earned")
    assert sent["content"]["subject"] == "Has ganado 120 puntos"
    assert "<p>" in sent["content"]["html"]
    message = message_of(table, "c_1", message_id)
    assert (message["status"], message["attempts"]) == ("sent", 1)
    (entry,) = [i for i in table.query_all("CUST#c_1", sk_prefix="TL#") if i["entity"] == "notification_log"]
    assert (entry["status"], entry["channel"]) == ("sent", "email")


def test_a_replayed_fan_out_after_sending_sends_nothing_more(table: Table) -> None:
    message_id = queued_message(table, preferred="email")
    assert send("c_1", message_id, "email", now=NOON).status == "sent"
    Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    assert send("c_1", message_id, "email", now=NOON).status == "already_done"
    assert len(outbox(table, "c_1")) == 1


def test_a_message_being_sent_elsewhere_is_retried_later(table: Table) -> None:
    message_id = queued_message(table, preferred="email")
    table.update(
        "CUST#c_1",
        f"NOTIF#MSG#{message_id}",
        "SET #s = :s, lease_until = :u",
        names={"#s": "status"},
        values={":s": "sending", ":u": (NOON + timedelta(seconds=60)).isoformat()},
    )
    with pytest.raises(TransientError):
        send("c_1", message_id, "email", now=NOON)
    # a lapsed lease (the other worker died) is taken over
    assert send("c_1", message_id, "email", now=NOON + timedelta(minutes=5)).status == "sent"


# -- failures, retries, fallback, DLQ ---------------------------------------------------------------
def test_a_failing_channel_is_retried_then_falls_back_to_the_next_consented_channel(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a message on WhatsApp (preferred) whose provider keeps failing
    message_id = queued_message(table)
    assert message_of(table, "c_1", message_id)["channels"] == ["whatsapp", "sms", "email"]
    whatsapp = FlakyProvider(failures=99)
    # When it fails twice: each failure releases the message for a retry (the queue redelivers)
    for attempt in (1, 2):
        with pytest.raises(SendFailed):
            send("c_1", message_id, "whatsapp", provider=whatsapp, now=NOON)
        state = message_of(table, "c_1", message_id)
        assert (state["status"], state["attempts"]) == ("queued", attempt)
    # Then the third failure moves it to SMS and queues it there
    result = send("c_1", message_id, "whatsapp", provider=whatsapp, now=NOON)
    assert (result.status, result.next_channel) == ("fallback", "sms")
    assert queue_bodies(sqs, stack, "NotifySmsQueue") == [{"customer_id": "c_1", "message_id": message_id}]
    state = message_of(table, "c_1", message_id)
    assert (state["channel"], state["attempts"], state["failed_channels"]) == ("sms", 0, ["whatsapp"])
    # and a late redelivery of the WhatsApp copy sends nothing
    assert send("c_1", message_id, "whatsapp", provider=whatsapp, now=NOON).status == "superseded"
    # And the SMS sender delivers it, once
    assert send("c_1", message_id, "sms", now=NOON).status == "sent"
    (sent,) = outbox(table, "c_1")
    assert sent["channel"] == "sms"
    assert len(sent["content"]["text"]) <= 160
    assert whatsapp.calls == ["whatsapp"] * 3


def test_a_permanent_failure_falls_back_at_once(table: Table, sqs: Any, stack: Resolver) -> None:
    message_id = queued_message(table)
    result = send("c_1", message_id, "whatsapp", provider=FlakyProvider(1, permanent=True), now=NOON)
    assert (result.status, result.next_channel) == ("fallback", "sms")
    assert len(queue_bodies(sqs, stack, "NotifySmsQueue")) == 1


def test_the_last_channel_failing_ends_in_the_dlq_never_lost(
    table: Table, stack: Resolver, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer with email only, and an email provider that is down
    fx.seed_customer(table, "c_1", granted={"email": True}, preferred="email")
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    monkeypatch.setenv("NOTIFY_CHANNEL", "email")
    get_settings.cache_clear()
    monkeypatch.setattr(adapters.OutboxProvider, "send", FlakyProvider(99).send)
    handler = load_function("send_notification").handler
    body = json.dumps({"customer_id": "c_1", "message_id": outcome.message_id})
    # When the queue delivers it (5 times before its redrive policy moves it to the DLQ)
    for _ in range(5):
        assert handler(sqs_event([body]), lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    # Then it is still queued (a DLQ redrive will send it), never marked sent, nothing in the outbox
    state = message_of(table, "c_1", outcome.message_id)
    assert (state["status"], state["attempts"]) == ("queued", 5)
    assert "provider down" in state["last_error"]
    assert outbox(table, "c_1") == []


def test_backoff_grows_with_each_receive(stack: Resolver, sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalty.notify.sender import backoff

    url = stack.refs["NotifyEmailQueue"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    (msg,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    calls: list[int] = []
    real = sqs.change_message_visibility

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs["VisibilityTimeout"])
        return real(**kwargs)

    monkeypatch.setattr(sqs, "change_message_visibility", spy)
    for count in (1, 2, 3, 9):
        backoff("email", msg["ReceiptHandle"], count)
    assert calls == [30, 60, 120, 900]


# -- live adapters ----------------------------------------------------------------------------------
MESSAGE: Item = {"message_id": "m-1", "intent": "points_earned", "klass": "transactional", "pk": "CUST#c_1"}


def test_ses_adapter_sends_the_rendered_email(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_EMAIL_FROM", "no-reply@example.com")
    get_settings.cache_clear()
    aws.client("ses").verify_email_identity(EmailAddress="no-reply@example.com")
    content = {"subject": "Hola", "text": "Texto", "html": "<p>Texto</p>"}
    delivery = adapters.SesProvider().send("email", "ana@example.com", content, MESSAGE)
    assert delivery.provider_id
    assert delivery.outbox is None


def test_ses_rejection_is_permanent(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_EMAIL_FROM", "unverified@example.com")
    get_settings.cache_clear()
    with pytest.raises(ProviderError) as err:
        adapters.SesProvider().send(
            "email", "ana@example.com", {"subject": "s", "text": "t", "html": "h"}, MESSAGE
        )
    assert err.value.permanent


def test_sns_push_adapter_publishes_to_the_device_endpoint(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns = aws.client("sns")
    app = sns.create_platform_application(
        Name="loyalty", Platform="GCM", Attributes={"PlatformCredential": "k"}
    )
    monkeypatch.setenv("PUSH_PLATFORM_APPLICATION_ARN", app["PlatformApplicationArn"])
    get_settings.cache_clear()
    delivery = adapters.SnsPushProvider().send("push", "device-token-1", {"title": "T", "body": "B"}, MESSAGE)
    assert delivery.provider_id


def test_sms_adapter_calls_end_user_messaging(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_ORIGINATION_IDENTITY", "pool-123")
    get_settings.cache_clear()
    client = aws.client("pinpoint-sms-voice-v2")
    with Stubber(client) as stub:
        stub.add_response(
            "send_text_message",
            {"MessageId": "sms-1"},
            {
                "DestinationPhoneNumber": "+34600000001",
                "MessageBody": "Hola",
                "MessageType": "TRANSACTIONAL",
                "OriginationIdentity": "pool-123",
            },
        )
        stub.add_client_error("send_text_message", "ValidationException", http_status_code=400)
        assert (
            adapters.SmsProvider().send("sms", "+34600000001", {"text": "Hola"}, MESSAGE).provider_id
            == "sms-1"
        )
        with pytest.raises(ProviderError) as err:
            adapters.SmsProvider().send("sms", "+34600000001", {"text": "Hola"}, MESSAGE)
    assert err.value.permanent


class FakeResponse(io.BytesIO):
    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


@pytest.fixture
def whatsapp_api(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The WhatsApp secret set and the Cloud API faked: the requests it received (answered wamid.1)."""
    aws.client("secretsmanager").put_secret_value(
        SecretId=stack.refs["WhatsAppSecret"],
        SecretString=json.dumps({"token": "tok", "phone_number_id": "555"}),
    )
    seen: list[Any] = []

    def fake_urlopen(request: Any, timeout: float) -> FakeResponse:
        seen.append(request)
        return FakeResponse(json.dumps({"messages": [{"id": "wamid.1"}]}).encode())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return seen


def test_whatsapp_adapter_posts_a_template_message_with_the_secret_token(whatsapp_api: list[Any]) -> None:
    seen = whatsapp_api
    content = {"template": "points_earned_v1", "language": "es", "parameters": ["Ana", "120", "T1"]}
    delivery = adapters.WhatsAppProvider().send("whatsapp", "+34600000001", content, MESSAGE)
    assert delivery.provider_id == "wamid.1"
    (request,) = seen
    assert request.full_url == "https://graph.facebook.com/v21.0/555/messages"
    assert request.headers["Authorization"] == "Bearer tok"
    body = json.loads(request.data)
    assert body["to"] == "34600000001"
    assert body["template"]["name"] == "points_earned_v1"
    assert [p["text"] for p in body["template"]["components"][0]["parameters"]] == ["Ana", "120", "T1"]


def test_whatsapp_adapter_sends_a_reply_as_free_form_text(whatsapp_api: list[Any]) -> None:
    # a reply inside the customer service window (a STOP confirmation) is a text, not a template
    content = {"text": "Done, Ana", "language": "en"}
    message = {"message_id": "m1", "intent": "whatsapp_stop_confirmed"}
    assert (
        adapters.WhatsAppProvider().send("whatsapp", "+16315551181", content, message).provider_id
        == "wamid.1"
    )
    body = json.loads(whatsapp_api[0].data)
    assert (body["type"], body["to"], body["text"]["body"]) == ("text", "16315551181", "Done, Ana")
    assert "template" not in body


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (429, False), (503, False)])
def test_whatsapp_errors_are_classified(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch, status: int, permanent: bool
) -> None:
    aws.client("secretsmanager").put_secret_value(
        SecretId=stack.refs["WhatsAppSecret"],
        SecretString=json.dumps({"token": "tok", "phone_number_id": "555"}),
    )

    def failing(request: Any, timeout: float) -> FakeResponse:
        raise urllib.error.HTTPError(request.full_url, status, "error", {}, None)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", failing)
    content = {"template": "t", "language": "es", "parameters": []}
    with pytest.raises(ProviderError) as err:
        adapters.WhatsAppProvider().send("whatsapp", "+34600000001", content, MESSAGE)
    assert err.value.permanent is permanent


def test_delivery_mode_selects_the_adapter(stack: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(adapters.provider_for("sms"), OutboxProvider)  # local parameters: outbox
    monkeypatch.setenv("DELIVERY_MODE", "live")
    get_settings.cache_clear()
    assert isinstance(adapters.provider_for("sms"), adapters.SmsProvider)
    assert isinstance(adapters.provider_for("whatsapp"), adapters.WhatsAppProvider)


def test_the_customer_view_shows_history_and_outbox(table: Table) -> None:
    from loyalty.notify.views import notification_view

    message_id = queued_message(table, preferred="email")
    send("c_1", message_id, "email", now=NOON)
    table.put({"pk": "CUST#c_1", "sk": "TL#2026-11-23T10:00:00+00:00#ev-1", "entity": "timeline"})
    view = notification_view("c_1")
    assert [(h["intent"], h["status"], h["channel"]) for h in view["history"]] == [
        ("points_earned", "sent", "email")
    ]
    assert [(o["channel"], o["address"]) for o in view["outbox"]] == [("email", "ana@example.com")]
    assert "pk" not in view["outbox"][0]


def test_an_opt_out_while_queued_wins_over_the_queued_message(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a message queued on WhatsApp, then the customer opts out of WhatsApp
    message_id = queued_message(table)
    fx.seed_customer(
        table, "c_1", granted={"email": True, "sms": True, "whatsapp": False}, preferred="whatsapp"
    )
    # When the WhatsApp sender picks it up, it moves to the next still-consented channel
    result = send("c_1", message_id, "whatsapp", now=NOON)
    assert (result.status, result.next_channel) == ("fallback", "sms")
    assert queue_bodies(sqs, stack, "NotifySmsQueue") == [{"customer_id": "c_1", "message_id": message_id}]
    # And with every channel withdrawn nothing is sent, and the record says why
    fx.seed_customer(table, "c_1", granted={}, preferred="whatsapp")
    assert send("c_1", message_id, "sms", now=NOON).status == "withdrawn"
    state = message_of(table, "c_1", message_id)
    assert (state["status"], state["reason"]) == ("suppressed", "no_consent")
    assert outbox(table, "c_1") == []


def test_a_message_erased_with_its_customer_is_acknowledged_not_sent(table: Table) -> None:
    message_id = queued_message(table, preferred="email")
    for item in list(table.query_all("CUST#c_1")):  # what identity's erasure does to the collection
        table.delete(item["pk"], item["sk"])
    assert send("c_1", message_id, "email", now=NOON).status == "gone"
    assert outbox(table, "c_1") == []
