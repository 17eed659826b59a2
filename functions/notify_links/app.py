"""Signed links, no sign-in: one-click unsubscribe (RFC 8058) and the preference center.

GET /unsubscribe/{token}: a page with a button (GETs never opt out: link scanners follow them);
POST /unsubscribe/{token}: opt out (what a mail client's one-click sends), idempotently;
GET|POST /preferences/{token}: channels, topics and language, each change a consent event.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.http import register_error_handlers
from loyalty.notify import links, pages, preferences
from loyalty.observability import logger, metrics
from loyalty.settings import requires

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)

Token = Annotated[str, Path(pattern=links.TOKEN_PATTERN)]
HTML = "text/html; charset=utf-8"


def _html(body: str, status: int = 200) -> Response[str]:
    return Response(status_code=status, content_type=HTML, body=body, headers={"Cache-Control": "no-store"})


def _form() -> dict[str, str]:
    raw = app.current_event.decoded_body or ""
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


@app.get("/unsubscribe/<token>", summary="The unsubscribe page (a button; GET changes nothing)")
def unsubscribe_page(token: Token) -> Response[str]:
    claims = links.verify(token, "unsubscribe")
    prefs = preferences.preferences(claims.customer_id)
    return _html(pages.unsubscribe_form(prefs["language"], claims.channel or "", f"./{token}"))


@app.post("/unsubscribe/<token>", summary="One-click unsubscribe (RFC 8058): opt out, idempotently")
def unsubscribe(token: Token) -> Response[str]:
    done = preferences.unsubscribe(token)
    if done.new:
        metrics.add_metric("Unsubscribes", MetricUnit.Count, 1)
    logger.info(
        "unsubscribed", extra={"customer_id": done.customer_id, "event_id": done.event_id, "new": done.new}
    )
    prefs = preferences.preferences(done.customer_id)
    return _html(pages.unsubscribed(prefs["language"], done.statements[0].channel))


@app.get("/preferences/<token>", summary="The preference center")
def preference_page(token: Token) -> Response[str]:
    claims = links.verify(token, "preferences")
    prefs = preferences.preferences(claims.customer_id)
    return _html(pages.preference_form(prefs["language"], prefs, f"./{token}"))


@app.post("/preferences/<token>", summary="Save the preference center (form post)")
def save_preferences(token: Token) -> Response[str]:
    claims = links.verify(token, "preferences")
    form = _form()
    current = preferences.preferences(claims.customer_id)
    channels = {c: f"channel.{c}" in form for c in current["channels"]}
    topics = {c: {t: f"topic.{c}.{t}" in form for t in current["topics"][c]} for c in current["topics"]}
    done = preferences.change_preferences(
        claims.customer_id,
        channels=channels,
        topics=topics,
        language=form.get("language") or None,
        delivery=preferences.DeliveryChange.from_form(form),
    )
    if done is not None:
        metrics.add_metric("PreferencesChanged", MetricUnit.Count, 1)
        logger.info("preferences changed", extra={"customer_id": done.customer_id, "event_id": done.event_id})
    lang = form.get("language") or current["language"]
    return _html(
        pages.preference_form(lang, preferences.preferences(claims.customer_id), f"./{token}", saved=True)
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@requires("table_name", "notify_link_secret_id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
