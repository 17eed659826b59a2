"""POST /webhooks/{provider}: verify, normalise and queue one provider delivery.

GET /webhooks/whatsapp answers Meta's verification handshake.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.http import register_error_handlers
from loyalty.ingest.providers.whatsapp import handshake
from loyalty.ingest.service import accept_webhook
from loyalty.observability import logger, metrics
from loyalty.settings import requires

app = APIGatewayRestResolver()
register_error_handlers(app)


@app.get("/webhooks/whatsapp")
def whatsapp_handshake() -> Response[str]:
    params = app.current_event.query_string_parameters or {}
    challenge = handshake(params)
    return Response(status_code=200, content_type="text/plain", body=challenge)


@app.post("/webhooks/<channel>")
def receive(channel: str) -> Response[dict[str, Any]]:
    event = app.current_event
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    accepted = accept_webhook(channel, event.headers or {}, body)
    events = accepted.events
    metrics.add_dimension("channel", channel)
    metrics.add_metric("WebhookEventsAccepted", MetricUnit.Count, len(events))
    logger.info(
        "webhook accepted",
        extra={"provider": channel, "ping": accepted.ping, "event_ids": [e.event_id for e in events]},
    )
    return Response(
        status_code=accepted.status,
        content_type="application/json",
        body={"accepted": [{"event_id": e.event_id, "type": e.type.value} for e in events]},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@requires("ingest_queue_url", "webhook_secrets_id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
