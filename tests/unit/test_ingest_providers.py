"""Real providers' published samples, signed as each provider signs them, through the webhook function.

Every connector: its samples accepted and queued as the right channel with the customer's
identifiers and lines; a bad signature refused; a replay refused (or, where the provider signs no
time, recorded once); a duplicate delivery yielding the same event ids; a malformed body a 4xx;
an unknown topic or event type handled as the provider needs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.sign_events import provider_headers
from devstack.template import Resolver
from tests.conftest import drain
from tests.support.lambdas import EVENTS, LambdaContext, api_event, load_function

SAMPLES = EVENTS / "webhooks"


@pytest.fixture
def ingest(stack: Resolver) -> Any:
    return load_function("ingest_webhook")


def _raw(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _post(
    ingest: Any, ctx: LambdaContext, provider: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    event = api_event(
        "POST", f"/webhooks/{provider}", body, headers, {"channel": provider}, resource="/webhooks/{channel}"
    )
    resp = ingest.handler(event, ctx)
    try:
        return resp["statusCode"], json.loads(resp["body"])
    except json.JSONDecodeError:
        return resp["statusCode"], resp["body"]


def _signed(ingest: Any, ctx: LambdaContext, provider: str, name: str, **kw: Any) -> tuple[int, Any]:
    body = _raw(name)
    return _post(ingest, ctx, provider, body, provider_headers(provider, body, **kw))


def _queued(stack: Resolver, sqs: Any) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain(sqs, stack.refs["IngestQueue"])]


AcceptOne = Callable[..., tuple[Any, dict[str, Any]]]


@pytest.fixture
def accept_one(ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext) -> AcceptOne:
    """Post a signed sample (``provider``, ``name``, header options): accepted (200), exactly one
    event queued; (response body, that event)."""

    def post(provider: str, name: str, **kw: Any) -> tuple[Any, dict[str, Any]]:
        status, body = _signed(ingest, lambda_context, provider, name, **kw)
        assert status == 200
        (event,) = _queued(stack, sqs)
        return body, event

    return post


def _ids(queued: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(i["type"], i["value"]) for q in queued for i in q["identifiers"]}


# ------------------------------------------------------------------------------------------- shopify


def test_shopify_order_sample_is_a_web_order_with_its_lines_and_shop_money(accept_one: AcceptOne) -> None:
    body, event = accept_one("shopify", "shopify/orders_create.json", topic="orders/create")
    assert [a["event_id"] for a in body["accepted"]] == [event["event_id"]]
    assert (event["channel"], event["type"]) == ("web", "order.placed")
    assert _ids([event]) == {("email", "john@test.com"), ("email", "jon@doe.ca")}
    payload = event["payload"]
    assert (payload["order_id"], payload["currency"], payload["total"]) == (
        "820982911946154508",
        "USD",
        "403.00",
    )
    assert [(li["line_id"], li["sku"], li["quantity"], li["unit_price"]) for li in payload["lines"]] == [
        ("866550311766439020", "IPOD2008PINK", 1, "199.00"),
        ("141249953214522974", "IPOD2008PINK", 1, "199.00"),
    ]


def test_shopify_pos_order_is_a_store_sale_at_the_mapped_location(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given the published order as Shopify POS sends it (source_name "pos" at a mapped location)
    doc = json.loads(_raw("shopify/orders_create.json"))
    doc.update(source_name="pos", location_id=48752903)
    body = json.dumps(doc).encode()
    # When orders/create and then orders/paid arrive for it
    for topic in ("orders/create", "orders/paid"):
        status, _ = _post(
            ingest, lambda_context, "shopify", body, provider_headers("shopify", body, topic=topic)
        )
        assert status == 200
    # Then both are one completed store sale (same event id), at the store of its location
    first, second = _queued(stack, sqs)
    assert first["event_id"] == second["event_id"]
    assert (first["channel"], first["type"]) == ("pos", "order.completed")
    assert (first["payload"]["store_id"], first["payload"]["fulfilment"]) == ("MAD-01", "in_store")


@pytest.mark.parametrize(
    ("topic", "kind"),
    [("orders/paid", "order.completed"), ("orders/cancelled", "order.cancelled")],
)
def test_shopify_order_topics(
    topic: str, kind: str, ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    assert _signed(ingest, lambda_context, "shopify", "shopify/orders_create.json", topic=topic)[0] == 200
    (event,) = _queued(stack, sqs)
    assert event["type"] == kind


def test_shopify_refund_reverses_exactly_its_lines_and_restocks_where_told(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    refund = {
        "id": 890088186047892319,
        "order_id": 820982911946154508,
        "created_at": "2021-12-31T19:00:00-05:00",
        "refund_line_items": [
            {
                "id": 487817672276298627,
                "quantity": 1,
                "line_item_id": 866550311766439020,
                "location_id": 48752903,
                "restock_type": "return",
                "subtotal_set": {"shop_money": {"amount": "199.00", "currency_code": "USD"}},
                "line_item": {
                    "id": 866550311766439020,
                    "sku": "IPOD2008PINK",
                    "quantity": 1,
                    "price_set": {"shop_money": {"amount": "199.00", "currency_code": "USD"}},
                },
            }
        ],
    }
    body = json.dumps(refund).encode()
    headers = provider_headers("shopify", body, topic="refunds/create")
    assert _post(ingest, lambda_context, "shopify", body, headers)[0] == 200
    (event,) = _queued(stack, sqs)
    payload = event["payload"]
    assert (event["type"], payload["refund_id"], payload["amount"]) == (
        "order.refunded",
        "890088186047892319",
        "199.00",
    )
    assert [(li["line_id"], li["sku"], li["quantity"]) for li in payload["lines"]] == [
        ("866550311766439020", "IPOD2008PINK", 1)
    ]
    assert payload["restock_location_id"] == "MAD-01"


def test_shopify_customer_consents_come_from_marketing_consent(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    customer = json.loads(_raw("shopify/orders_create.json"))["customer"]
    customer["email_marketing_consent"] = {"state": "unsubscribed", "opt_in_level": "single_opt_in"}
    customer["sms_marketing_consent"] = {"state": "subscribed", "opt_in_level": "single_opt_in"}
    body = json.dumps(customer).encode()
    headers = provider_headers("shopify", body, topic="customers/update")
    assert _post(ingest, lambda_context, "shopify", body, headers)[0] == 200
    (event,) = _queued(stack, sqs)
    assert event["type"] == "customer.updated"
    assert {(c["channel"], c["granted"]) for c in event["payload"]["consents"]} == {
        ("email", False),
        ("sms", True),
    }


@pytest.mark.parametrize(
    ("provider", "sample", "secret"),
    [
        ("shopify", "shopify/orders_create.json", "not-the-app-secret"),
        ("whatsapp", "whatsapp/text_message.json", "wrong"),
    ],
)
def test_a_delivery_signed_with_another_secret_is_refused(
    ingest: Any,
    stack: Resolver,
    sqs: Any,
    lambda_context: LambdaContext,
    provider: str,
    sample: str,
    secret: str,
) -> None:
    body = _raw(sample)
    bad = provider_headers(provider, body, secret=secret)
    assert _post(ingest, lambda_context, provider, body, bad)[1]["error"]["code"] == "signature_invalid"
    assert _queued(stack, sqs) == []


def test_shopify_stale_delivery_and_unknown_topic(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    body = _raw("shopify/orders_create.json")
    stale = provider_headers("shopify", body, timestamp=int(time.time()) - 3 * 86_400)
    assert _post(ingest, lambda_context, "shopify", body, stale)[1]["error"]["code"] == "signature_expired"
    unknown = provider_headers("shopify", body, topic="products/create")
    status, error = _post(ingest, lambda_context, "shopify", body, unknown)
    assert (status, error["error"]["code"]) == (422, "unsupported_topic")
    assert _queued(stack, sqs) == []


def test_shopify_duplicate_delivery_has_the_same_event_ids(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    first = _signed(ingest, lambda_context, "shopify", "shopify/orders_create.json", msg_id="a")
    again = _signed(ingest, lambda_context, "shopify", "shopify/orders_create.json", msg_id="b")
    assert first == again
    assert first[0] == 200


# --------------------------------------------------------------------------------------- woocommerce


def test_woocommerce_order_samples_follow_the_status(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    for name, topic in (("order_created.json", "order.created"), ("order_updated.json", "order.updated")):
        status, _ = _signed(ingest, lambda_context, "woocommerce", f"woocommerce/{name}", topic=topic)
        assert status == 200
    created, updated = _queued(stack, sqs)
    # processing then completed: both "paid", one fact
    assert created["event_id"] == updated["event_id"]
    assert (created["channel"], created["type"]) == ("web", "order.completed")
    assert ("email", "john.doe@example.com") in _ids([created])
    lines = created["payload"]["lines"]
    assert [(li["line_id"], li["sku"], li["quantity"]) for li in lines] == [
        ("315", "product-93", 2),
        ("316", "Bar3", 1),
    ]
    assert created["payload"]["total"] == "29.35"


def test_woocommerce_customer_sample(accept_one: AcceptOne) -> None:
    _, event = accept_one("woocommerce", "woocommerce/customer_created.json", topic="customer.created")
    assert (event["type"], event["payload"]["first_name"]) == ("customer.registered", "John")
    assert ("email", "john.doe@example.com") in _ids([event])


def test_woocommerce_activation_ping_gets_exactly_200_and_queues_nothing(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert _post(ingest, lambda_context, "woocommerce", b"webhook_id=12", headers)[0] == 200
    assert _queued(stack, sqs) == []


def test_woocommerce_bad_signature_unknown_topic_and_malformed_body(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    body = _raw("woocommerce/order_created.json")
    bad = provider_headers("woocommerce", body, secret="wrong")
    assert _post(ingest, lambda_context, "woocommerce", body, bad)[0] == 401
    unsigned = {"Content-Type": "application/json", "X-WC-Webhook-Topic": "order.created"}
    assert (
        _post(ingest, lambda_context, "woocommerce", body, unsigned)[1]["error"]["code"]
        == "signature_missing"
    )
    unknown = provider_headers("woocommerce", body, topic="coupon.created")
    assert _post(ingest, lambda_context, "woocommerce", body, unknown)[0] == 422
    broken = b'{"id": 727, "status": '
    assert (
        _post(ingest, lambda_context, "woocommerce", broken, provider_headers("woocommerce", broken))[0]
        == 400
    )
    assert _queued(stack, sqs) == []


# ------------------------------------------------------------------------------------------ whatsapp


def test_whatsapp_handshake(ingest: Any, stack: Resolver, lambda_context: LambdaContext) -> None:
    def get(token: str) -> dict[str, Any]:
        query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
        event = api_event("GET", "/webhooks/whatsapp", None, {}, None, query=query)
        resp: dict[str, Any] = ingest.handler(event, lambda_context)
        return resp

    ok = get("local-whatsapp-verify-token")
    assert (ok["statusCode"], ok["body"]) == (200, "1158201444")
    assert get("guess")["statusCode"] == 403


def test_whatsapp_text_sample_is_a_chat_message_from_the_sender(accept_one: AcceptOne) -> None:
    _, event = accept_one("whatsapp", "whatsapp/text_message.json")
    assert (event["channel"], event["type"], event["source_event_id"]) == (
        "chat",
        "chat.message",
        "ABGGFlA5Fpa",
    )
    assert _ids([event]) == {("phone", "+16315551181")}
    assert event["payload"]["text"] == "this is a text message"


def test_whatsapp_order_sample_is_an_order_with_its_product_items(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    assert _signed(ingest, lambda_context, "whatsapp", "whatsapp/order_message.json")[0] == 200
    message, order = _queued(stack, sqs)
    assert (message["type"], order["type"]) == ("chat.message", "order.placed")
    assert order["payload"]["lines"] == [
        {"line_id": "1", "sku": "di9ozbzfi4", "quantity": 2, "unit_price": "7.99", "category": None}
    ]
    assert (order["payload"]["total"], order["payload"]["currency"]) == ("15.98", "USD")
    assert _ids([order]) == {("phone", "+16505551234")}


@pytest.mark.parametrize("word", ["STOP", "baja", " Stop "])
def test_whatsapp_stop_is_an_opt_out_besides_the_message(
    word: str, ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    doc = json.loads(_raw("whatsapp/text_message.json"))
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = word
    body = json.dumps(doc).encode()
    assert _post(ingest, lambda_context, "whatsapp", body, provider_headers("whatsapp", body))[0] == 200
    message, opt_out = _queued(stack, sqs)
    assert message["type"] == "chat.message"
    assert opt_out["type"] == "consent.changed"
    assert opt_out["payload"]["consents"] == [
        {"channel": "whatsapp", "granted": False, "source": "whatsapp:stop", "topic": None}
    ]


def test_whatsapp_failed_status_with_a_permanent_error_is_a_bounce(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    status = {
        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjY4N0Q1NTQ4NDM1MjEA",
        "status": "failed",
        "timestamp": "1739321024",
        "recipient_id": "16505551234",
        "errors": [{"code": 131026, "title": "Message undeliverable"}],
    }
    sent = {**status, "id": "wamid.other", "status": "delivered", "errors": []}
    doc = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"statuses": [sent, status]}}]}],
    }
    body = json.dumps(doc).encode()
    assert _post(ingest, lambda_context, "whatsapp", body, provider_headers("whatsapp", body))[0] == 200
    (bounce,) = _queued(stack, sqs)
    assert bounce["type"] == "message.bounced"
    assert (bounce["payload"]["channel"], bounce["payload"]["address"]) == ("whatsapp", "+16505551234")
    assert bounce["payload"]["permanent"] is True


def test_whatsapp_malformed_signature_and_duplicate(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    body = _raw("whatsapp/text_message.json")
    malformed = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha1=abc"}
    assert (
        _post(ingest, lambda_context, "whatsapp", body, malformed)[1]["error"]["code"]
        == "signature_malformed"
    )
    assert _queued(stack, sqs) == []
    # a redelivery (Meta retries) carries the same wamid: the same event id
    first = _signed(ingest, lambda_context, "whatsapp", "whatsapp/text_message.json")
    again = _signed(ingest, lambda_context, "whatsapp", "whatsapp/text_message.json")
    assert first == again
    not_whatsapp = b'{"object": "page", "entry": []}'
    assert (
        _post(ingest, lambda_context, "whatsapp", not_whatsapp, provider_headers("whatsapp", not_whatsapp))[0]
        == 422
    )


# ------------------------------------------------------------------------------------------ sendgrid


def test_sendgrid_sdk_vector_verifies_with_sendgrids_own_key_and_signature(stack: Resolver, sqs: Any) -> None:
    from loyalty.errors import Unauthorized
    from loyalty.ingest.service import accept_webhook

    vector = json.loads(_raw("sendgrid/signed_dropped.vector.json"))
    body = _raw("sendgrid/signed_dropped.body")
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": vector["signature"],
        "X-Twilio-Email-Event-Webhook-Timestamp": vector["timestamp"],
    }
    at = int(vector["timestamp"])
    accepted = accept_webhook("sendgrid", headers, body, now=at)
    (event,) = accepted.events
    assert (event.type, event.payload.kind) == ("message.bounced", "delivery")
    assert event.payload.model_dump(include={"address", "permanent", "provider"}) == {
        "address": "hello@world.com",
        "permanent": True,
        "provider": "sendgrid",
    }
    bad = {**headers, "X-Twilio-Email-Event-Webhook-Signature": vector["bad_signature"]}
    with pytest.raises(Unauthorized):
        accept_webhook("sendgrid", bad, body, now=at)
    with pytest.raises(Unauthorized):  # the tampered body SendGrid's own test refuses
        accept_webhook("sendgrid", headers, b"payload", now=at)
    with pytest.raises(Unauthorized) as replay:  # the same delivery, days later
        accept_webhook("sendgrid", headers, body, now=at + 86_400)
    assert replay.value.code == "signature_expired"


EXPECTED = {
    "processed.json": [],
    "delivered.json": [],
    "deferred.json": [],
    "bounce.json": [("message.bounced", True)],
    "blocked.json": [("message.bounced", False)],
    "dropped.json": [("message.bounced", True)],
    "open.json": [("email.opened", None)],
    "click.json": [("email.clicked", None)],
    "spamreport.json": [("consent.changed", False)],
    "unsubscribe.json": [("consent.changed", False)],
    "group_unsubscribe.json": [("consent.changed", False)],
    "group_resubscribe.json": [("consent.changed", True)],
}


def _outcome(event: dict[str, Any]) -> tuple[str, bool | None]:
    payload = event["payload"]
    if payload["kind"] == "delivery":
        return event["type"], payload["permanent"]
    if payload["kind"] == "profile":
        (consent,) = payload["consents"]
        assert consent["channel"] == "email"
        assert consent["source"].startswith("sendgrid:")
        return event["type"], consent["granted"]
    return event["type"], None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sendgrid_reference_samples(
    name: str, ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    status, _body = _signed(ingest, lambda_context, "sendgrid", f"sendgrid/{name}")
    assert status == 200
    queued = _queued(stack, sqs)
    assert [_outcome(e) for e in queued] == EXPECTED[name]
    assert all(_ids([e]) == {("email", "example@test.com")} for e in queued)


def test_sendgrid_consent_source_names_the_event(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    _signed(ingest, lambda_context, "sendgrid", "sendgrid/group_unsubscribe.json")
    (event,) = _queued(stack, sqs)
    assert event["payload"]["consents"][0]["source"] == "sendgrid:group_unsubscribe"


def test_sendgrid_unknown_and_future_types_are_skipped_not_failed(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    batch = [
        *json.loads(_raw("sendgrid/open.json")),
        {
            "email": "example@test.com",
            "timestamp": 1513299569,
            "event": "machine_opened",
            "sg_event_id": "x1",
        },
        {"event": "open"},
    ]
    body = json.dumps(batch).encode()
    status, answer = _post(ingest, lambda_context, "sendgrid", body, provider_headers("sendgrid", body))
    assert status == 200
    assert [a["type"] for a in answer["accepted"]] == ["email.opened"]


def test_sendgrid_batch_of_hundreds_of_kb_is_accepted(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    template = json.loads(_raw("sendgrid/open.json"))[0]
    batch = [{**template, "sg_event_id": f"evt-{i}"} for i in range(1500)]
    body = json.dumps(batch).encode()
    assert len(body) > 400_000
    status, answer = _post(ingest, lambda_context, "sendgrid", body, provider_headers("sendgrid", body))
    assert status == 200
    assert len(answer["accepted"]) == 1500


def test_sendgrid_bad_signature_and_malformed(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    body = _raw("sendgrid/bounce.json")
    headers = provider_headers("sendgrid", body)
    tampered = body.replace(b"500 unknown recipient", b"250 OK")
    assert (
        _post(ingest, lambda_context, "sendgrid", tampered, headers)[1]["error"]["code"]
        == "signature_invalid"
    )
    not_a_batch = b'{"event": "open"}'
    assert (
        _post(ingest, lambda_context, "sendgrid", not_a_batch, provider_headers("sendgrid", not_a_batch))[0]
        == 422
    )
    assert _queued(stack, sqs) == []


# ------------------------------------------------------------------------------------- hostile bodies


@pytest.mark.parametrize("provider", ["pos", "shopify", "woocommerce", "whatsapp", "sendgrid"])
def test_a_body_nested_100000_levels_deep_is_400_not_5xx(
    provider: str, ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    status, answer = _post(ingest, lambda_context, provider, body, provider_headers(provider, body))
    assert status in (400, 413)
    assert answer["error"]["code"] in ("invalid_json", "payload_too_large")
    deep = b"[" * 60_000 + b"]" * 60_000  # under every size limit
    status, answer = _post(ingest, lambda_context, provider, deep, provider_headers(provider, deep))
    assert (status, answer["error"]["code"]) == (400, "invalid_json")


def test_unknown_provider_is_404(ingest: Any, stack: Resolver, lambda_context: LambdaContext) -> None:
    assert _post(ingest, lambda_context, "mailchimp", b"{}", {"Content-Type": "application/json"})[0] == 404


def test_fixture_sources_are_named_beside_them() -> None:
    for folder in ("shopify", "woocommerce", "whatsapp", "sendgrid"):
        sources = (SAMPLES / folder / "SOURCES.md").read_text()
        for sample in sorted(Path(SAMPLES / folder).glob("*.json")):
            assert sample.name in sources, f"{folder}/{sample.name} has no source in SOURCES.md"
