"""Sign deliveries as each provider signs them, and write the ``events/api`` (and derived) samples.

``provider_headers`` is the one signer the tests, the demo and the tools use: Standard Webhooks
for our own senders, and Shopify / WooCommerce / WhatsApp / SendGrid's own schemes for theirs,
with the local secrets of ``config/local-secrets.json``.

API events are signed with the local secrets at the current time; the signature window is five
minutes by design, so re-run this right before ``sam local invoke -e events/api/...``:

    .venv/bin/python -m devstack.sign_events
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from devstack.provision import local_secrets
from devstack.template import ROOT
from loyalty.eventlog.store import to_item
from loyalty.ingest.service import normalise_delivery
from loyalty.ingest.signature import signed_headers
from loyalty.routing.router import RoutedEvent
from loyalty.store.table import serialize

EVENTS = ROOT / "events"
STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/loyalty-local/stream/2026-01-01T00:00:00.000"


def provider_headers(
    provider: str,
    body: bytes,
    *,
    topic: str | None = None,
    timestamp: int | None = None,
    secret: str | None = None,
    msg_id: str | None = None,
) -> dict[str, str]:
    """The headers ``provider`` sends with ``body``, signed with the local secret (or ``secret``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    entry = local_secrets()[provider]
    secrets = entry if isinstance(entry, list) else entry.get("secrets", [])
    key = secret if secret is not None else (secrets[0] if secrets else "")
    json_type = {"Content-Type": "application/json"}
    if provider == "shopify":
        mac = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
        triggered = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        return {
            **json_type,
            "X-Shopify-Topic": topic or "orders/create",
            "X-Shopify-Hmac-Sha256": mac,
            "X-Shopify-Shop-Domain": "loyalty-local.myshopify.com",
            "X-Shopify-Webhook-Id": msg_id or hashlib.sha256(body).hexdigest()[:36],
            "X-Shopify-Triggered-At": triggered,
            "X-Shopify-API-Version": "2025-04",
        }
    if provider == "woocommerce":
        mac = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
        resource, _, event = (topic or "order.created").partition(".")
        return {
            **json_type,
            "X-WC-Webhook-Topic": topic or "order.created",
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": mac,
            "X-WC-Webhook-Source": "https://shop.example/",
            "X-WC-Webhook-ID": "1",
            "X-WC-Webhook-Delivery-ID": msg_id or hashlib.sha256(body).hexdigest()[:32],
        }
    if provider == "whatsapp":
        mac = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        return {**json_type, "X-Hub-Signature-256": f"sha256={mac}"}
    if provider == "sendgrid":
        pem = secret if secret is not None else entry["local_signing_key"]
        private = load_pem_private_key(pem.encode(), password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        signature = private.sign(str(ts).encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            **json_type,
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(ts),
        }
    return signed_headers(key, ts, body, msg_id)


def api_event(channel: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The API Gateway REST proxy event for ``POST /webhooks/{channel}``."""
    return {
        "resource": "/webhooks/{channel}",
        "path": f"/webhooks/{channel}",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"channel": channel},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/webhooks/{channel}",
            "httpMethod": "POST",
            "path": f"/v1/webhooks/{channel}",
            "stage": "v1",
            "requestId": "sample-request",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def _sqs(bodies: list[str], queue: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"00000000-0000-4000-8000-{i:012d}",
                "receiptHandle": f"sample-{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763900000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:{queue}",
                "awsRegion": "eu-west-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def _write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def main() -> int:
    secrets = local_secrets()
    now = int(time.time())
    received = datetime.fromtimestamp(now, UTC)
    canonical = []
    for sample in sorted((EVENTS / "webhooks").glob("*.json")):
        channel = sample.stem.split("_", 1)[0]
        body = json.dumps(json.loads(sample.read_text()), ensure_ascii=False).encode()
        _write(
            EVENTS / "api" / f"webhook_{sample.stem}.json",
            api_event(channel, body, signed_headers(secrets[channel][0], now, body)),
        )
        canonical.extend(normalise_delivery(channel, body, received))
    _write(
        EVENTS / "sqs" / "record_events.json",
        _sqs([e.model_dump_json() for e in canonical[:10]], "loyalty-local-ingest"),
    )
    sale = next(e for e in canonical if e.channel == "pos" and e.type == "order.completed")
    item = to_item(sale, 400)
    insert = {
        "eventID": "1",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {
            "ApproximateCreationDateTime": now,
            "Keys": serialize({"pk": item["pk"], "sk": item["sk"]}),
            "NewImage": serialize(item),
            "SequenceNumber": "000000000000000000001",
            "SizeBytes": 512,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": STREAM_ARN,
    }
    _write(EVENTS / "stream" / "route_events_insert.json", {"Records": [insert]})
    attributed = RoutedEvent(stage="attributed", customer_id="c_sample", event=sale)
    _write(
        EVENTS / "sqs" / "points_order_completed.json",
        _sqs([attributed.model_dump_json()], "loyalty-local-points"),
    )
    recorded = RoutedEvent(stage="recorded", event=sale)
    _write(
        EVENTS / "sqs" / "identity_pos_sale.json",
        _sqs([recorded.model_dump_json()], "loyalty-local-identity"),
    )
    _write(EVENTS / "sqs" / "stock_pos_sale.json", _sqs([recorded.model_dump_json()], "loyalty-local-stock"))
    print(f"wrote samples under {EVENTS} (signed at {now})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
