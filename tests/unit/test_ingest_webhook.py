"""POST /webhooks/{channel}: every channel's happy path, every error answer, replay and rotation."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devstack.provision import local_secrets
from devstack.template import Resolver
from loyalty.ingest.signature import sign, signed_headers
from tests.conftest import drain
from tests.support.lambdas import LambdaContext, api_event, load_event, load_function, signed_webhook

SAMPLES = {
    "web": [
        "web_order_created.json",
        "web_order_paid.json",
        "web_order_refunded.json",
        "web_customer_created.json",
    ],
    "pos": ["pos_sale.json", "pos_return.json"],
    "app": ["app_sign_up.json", "app_product_viewed.json"],
    "chat": ["chat_message.json", "chat_order.json", "chat_opt_in.json"],
    "email": ["email_events.json", "email_unsubscribe.json"],
}
CASES = [(channel, name) for channel, names in SAMPLES.items() for name in names]


@pytest.fixture
def ingest(stack: Resolver) -> Any:
    return load_function("ingest_webhook")


def _call(ingest: Any, event: dict[str, Any], ctx: LambdaContext) -> tuple[int, dict[str, Any]]:
    resp = ingest.handler(event, ctx)
    return resp["statusCode"], json.loads(resp["body"])


def _queued(stack: Resolver, sqs: Any) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain(sqs, stack.refs["IngestQueue"])]


@pytest.mark.parametrize(("channel", "sample"), CASES)
def test_every_channel_sample_is_accepted_and_queued_as_canonical_events(
    channel: str, sample: str, ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given a signed delivery of a realistic payload
    event = signed_webhook(channel, load_event(f"webhooks/{sample}"))
    # When it is posted
    status, body = _call(ingest, event, lambda_context)
    # Then it is acknowledged with its event ids, and exactly those events are queued
    assert status == 202
    queued = _queued(stack, sqs)
    assert [q["event_id"] for q in queued] == [a["event_id"] for a in body["accepted"]]
    assert all(q["channel"] == channel for q in queued)
    assert all(q["identifiers"] for q in queued)


def test_identifiers_are_normalised_at_ingest(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    _call(ingest, signed_webhook("web", load_event("webhooks/web_order_created.json")), lambda_context)
    (queued,) = _queued(stack, sqs)
    assert {(i["type"], i["value"]) for i in queued["identifiers"]} == {
        ("email", "anagarcia@gmail.com"),
        ("phone", "+34612345678"),
    }


def test_email_batch_becomes_one_event_per_provider_event(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    status, body = _call(
        ingest, signed_webhook("email", load_event("webhooks/email_events.json")), lambda_context
    )
    assert status == 202
    assert [a["type"] for a in body["accepted"]] == ["consent.changed", "email.opened", "email.clicked"]


def test_same_delivery_twice_is_accepted_twice_with_the_same_event_id(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    doc = load_event("webhooks/pos_sale.json")
    first = _call(ingest, signed_webhook("pos", doc), lambda_context)
    second = _call(ingest, signed_webhook("pos", doc), lambda_context)
    assert first[0] == second[0] == 202
    assert first[1]["accepted"] == second[1]["accepted"]


def test_rotation_any_active_secret_verifies(
    ingest: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    doc = load_event("webhooks/web_order_paid.json")
    current, newest = local_secrets()["web"]
    assert _call(ingest, signed_webhook("web", doc, secret=newest), lambda_context)[0] == 202
    # a sender in mid-rotation sends both signatures, space-separated: one retired, one valid
    body = json.dumps(doc).encode()
    ts = int(time.time())
    retired = "whsec_" + "A" * 32
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "msg_rotation",
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(sign(s, "msg_rotation", ts, body) for s in (retired, current)),
    }
    event = api_event(
        "POST", "/webhooks/web", body, headers, {"channel": "web"}, resource="/webhooks/{channel}"
    )
    assert _call(ingest, event, lambda_context)[0] == 202


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, b: h.pop("webhook-signature"), "signature_missing"),
        (lambda h, b: h.pop("webhook-timestamp"), "signature_missing"),
        (lambda h, b: h.pop("webhook-id"), "signature_missing"),
        (lambda h, b: h.update({"webhook-signature": "v1," + "A" * 44}), "signature_invalid"),
        (lambda h, b: h.update({"webhook-id": "msg_other"}), "signature_invalid"),
        (lambda h, b: h.update({"webhook-signature": "v1=" + "0" * 64}), "signature_malformed"),
        (lambda h, b: h.update({"webhook-signature": "v2,abc"}), "signature_malformed"),
        (lambda h, b: h.update({"webhook-signature": "v1,not base64!"}), "signature_malformed"),
        (lambda h, b: h.update({"webhook-timestamp": "yesterday"}), "signature_malformed"),
    ],
)
def test_bad_signatures_are_401(
    mutate: Any, code: str, ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    event = signed_webhook("pos", load_event("webhooks/pos_sale.json"))
    mutate(event["headers"], event["body"])
    status, body = _call(ingest, event, lambda_context)
    assert (status, body["error"]["code"]) == (401, code)
    assert _queued(stack, sqs) == []


def test_tampered_body_is_401(ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext) -> None:
    event = signed_webhook("pos", load_event("webhooks/pos_sale.json"))
    event["body"] = event["body"].replace("124.50", "1.00")
    assert _call(ingest, event, lambda_context)[1]["error"]["code"] == "signature_invalid"
    assert _queued(stack, sqs) == []


def test_secret_of_another_channel_is_401(
    ingest: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    event = signed_webhook("pos", load_event("webhooks/pos_sale.json"), secret=local_secrets()["web"][0])
    assert _call(ingest, event, lambda_context)[0] == 401


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_replayed_or_future_timestamps_outside_window_are_401(
    skew: int, ingest: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    event = signed_webhook("app", load_event("webhooks/app_sign_up.json"), timestamp=int(time.time()) + skew)
    status, body = _call(ingest, event, lambda_context)
    assert (status, body["error"]["code"]) == (401, "signature_expired")


@pytest.mark.parametrize("skew", [-290, 290])
def test_timestamps_inside_window_are_accepted(
    skew: int, ingest: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    event = signed_webhook("app", load_event("webhooks/app_sign_up.json"), timestamp=int(time.time()) + skew)
    assert _call(ingest, event, lambda_context)[0] == 202


def test_unknown_channel_is_404(ingest: Any, stack: Resolver, lambda_context: LambdaContext) -> None:
    event = signed_webhook("fax", {"hello": "world"}, secret="whsec_" + "A" * 32)
    status, body = _call(ingest, event, lambda_context)
    assert (status, body["error"]["code"], body["error"]["field"]) == (404, "unknown_channel", "channel")


def test_non_json_is_415(ingest: Any, stack: Resolver, lambda_context: LambdaContext) -> None:
    event = signed_webhook("pos", load_event("webhooks/pos_sale.json"))
    event["headers"]["Content-Type"] = "text/plain"
    assert _call(ingest, event, lambda_context)[0] == 415


def test_body_over_the_limit_is_413(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    doc = load_event("webhooks/chat_message.json")
    doc["text"]["body"] = "x" * 300_000
    status, body = _call(ingest, signed_webhook("chat", doc), lambda_context)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert _queued(stack, sqs) == []


def test_invalid_json_is_400(ingest: Any, stack: Resolver, lambda_context: LambdaContext) -> None:
    body = b"{not json"
    ts = int(time.time())
    headers = signed_headers(local_secrets()["pos"][0], ts, body)
    event = api_event(
        "POST", "/webhooks/pos", body, headers, {"channel": "pos"}, resource="/webhooks/{channel}"
    )
    status, payload = _call(ingest, event, lambda_context)
    assert (status, payload["error"]["code"]) == (400, "invalid_json")


@pytest.mark.parametrize(
    ("channel", "sample", "mutate", "field"),
    [
        ("pos", "pos_sale.json", lambda d: d.pop("store_id"), "store_id"),
        ("pos", "pos_sale.json", lambda d: d["lines"][0].update(qty=0), "lines.0.qty"),
        ("pos", "pos_return.json", lambda d: d.pop("original_ticket_id"), "body"),
        ("web", "web_order_created.json", lambda d: d.update(topic="orders/exploded"), "topic"),
        ("app", "app_sign_up.json", lambda d: d["device"].update(platform="fax"), "device.platform"),
        ("chat", "chat_order.json", lambda d: d.pop("order"), "body"),
        ("email", "email_events.json", lambda d: d[1].pop("email"), "1.email"),
        ("stock", "stock_count.json", lambda d: d.pop("counted_at"), "body"),
        ("stock", "stock_count.json", lambda d: d["lines"][0].update(quantity=-1), "body"),
        ("stock", "stock_count.json", lambda d: d.update(type="inventory"), "type"),
        ("stock", "stock_count.json", lambda d: d.update(lines=[]), "lines"),
        ("stock", "stock_count.json", lambda d: d["lines"].append(d["lines"][0]), "body"),
        ("stock", "stock_receipt.json", lambda d: d["lines"][0].update(quantity=0), "body"),
        ("stock", "stock_receipt.json", lambda d: d.pop("occurred_at"), "body"),
        ("stock", "stock_adjustment.json", lambda d: d.update(location_id="MAD#SOL"), "location_id"),
        ("stock", "stock_adjustment.json", lambda d: d["lines"][0].pop("sku"), "lines.0.sku"),
    ],
)
def test_invalid_payloads_are_422_with_the_field_at_fault(
    channel: str,
    sample: str,
    mutate: Any,
    field: str,
    ingest: Any,
    stack: Resolver,
    sqs: Any,
    lambda_context: LambdaContext,
) -> None:
    doc = load_event(f"webhooks/{sample}")
    mutate(doc)
    status, body = _call(ingest, signed_webhook(channel, doc), lambda_context)
    assert status == 422
    assert body["error"]["code"] == "invalid_payload"
    assert body["error"]["field"] == field
    assert _queued(stack, sqs) == []


def test_invalid_identifier_is_422(ingest: Any, stack: Resolver, lambda_context: LambdaContext) -> None:
    doc = load_event("webhooks/web_customer_created.json")
    doc["data"]["email"] = "not-an-email"
    assert _call(ingest, signed_webhook("web", doc), lambda_context)[0] == 422


def test_queue_outage_is_503_not_acknowledged(
    ingest: Any, stack: Resolver, sqs: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext
) -> None:
    sqs.delete_queue(QueueUrl=stack.refs["IngestQueue"])
    status, body = _call(ingest, signed_webhook("pos", load_event("webhooks/pos_sale.json")), lambda_context)
    assert (status, body["error"]["code"]) == (503, "temporarily_unavailable")
