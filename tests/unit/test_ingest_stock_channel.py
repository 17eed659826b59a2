"""POST /webhooks/stock: the ERP/warehouse feed becomes one canonical stock event per line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.provision import local_secrets
from devstack.template import Resolver
from loyalty.models.events import ChannelEvent
from tests.conftest import drain
from tests.support.lambdas import LambdaContext, load_event, load_function, signed_webhook
from tests.support.stock import apply_message, figures, message


@pytest.fixture
def ingest(stack: Resolver) -> Any:
    return load_function("ingest_webhook")


def _post(ingest: Any, doc: Any, ctx: LambdaContext, secret: str | None = None) -> tuple[int, dict[str, Any]]:
    resp = ingest.handler(signed_webhook("stock", doc, secret=secret), ctx)
    return resp["statusCode"], json.loads(resp["body"])


def _queued(stack: Resolver, sqs: Any) -> list[ChannelEvent]:
    return [ChannelEvent.model_validate_json(m["Body"]) for m in drain(sqs, stack.refs["IngestQueue"])]


@pytest.mark.parametrize(
    ("sample", "kind", "quantities"),
    [
        ("stock_count.json", "stock.counted", [12, 30]),
        ("stock_receipt.json", "stock.adjusted", [48, 36]),
        ("stock_adjustment.json", "stock.adjusted", [-2]),
    ],
)
def test_every_stock_sample_becomes_one_event_per_line(
    sample: str,
    kind: str,
    quantities: list[int],
    ingest: Any,
    stack: Resolver,
    sqs: Any,
    lambda_context: LambdaContext,
) -> None:
    status, body = _post(ingest, load_event(f"webhooks/{sample}"), lambda_context)
    assert status == 202
    queued = _queued(stack, sqs)
    assert [e.type.value for e in queued] == [kind] * len(quantities)
    assert [e.payload.quantity for e in queued] == quantities  # type: ignore[union-attr]
    assert [a["event_id"] for a in body["accepted"]] == [e.event_id for e in queued]


def test_count_keeps_the_count_timestamp_and_redelivery_keeps_ids(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    doc = load_event("webhooks/stock_count.json")
    first = _post(ingest, doc, lambda_context)[1]["accepted"]
    again = _post(ingest, doc, lambda_context)[1]["accepted"]
    assert first == again
    event = _queued(stack, sqs)[0]
    assert event.payload.counted_at.isoformat() == "2026-11-23T06:45:00+00:00"  # type: ignore[union-attr]


def test_a_count_from_the_feed_sets_the_store_figure(
    ingest: Any, stack: Resolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    _post(ingest, load_event("webhooks/stock_count.json"), lambda_context)
    for event in _queued(stack, sqs):
        apply_message(message(event))
    assert figures("SKU-JACKET-M", "MAD-SOL").on_hand == 12
    assert figures("SKU-BEANIE", "MAD-SOL").on_hand == 30


def test_stock_feed_signed_with_another_channels_secret_is_401(
    ingest: Any, stack: Resolver, lambda_context: LambdaContext
) -> None:
    status, body = _post(
        ingest, load_event("webhooks/stock_count.json"), lambda_context, secret=local_secrets()["pos"][0]
    )
    assert (status, body["error"]["code"]) == (401, "signature_invalid")
