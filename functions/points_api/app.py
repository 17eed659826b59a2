"""Points API: redemptions (idempotent), balance with lots, explained ledger, accrual rules admin."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from loyalty.errors import InvalidInput
from loyalty.http import api, idempotency_key
from loyalty.models.events import Channel
from loyalty.observability import logger, metrics
from loyalty.points.rules import AccrualRule
from loyalty.points.service import PointsService
from loyalty.settings import requires

app = api("Loyalty points API", "/openapi/points.json")


class RedemptionRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)
    points: int = Field(ge=1, le=1_000_000)
    channel: Channel | None = None
    note: str | None = Field(default=None, max_length=256)


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.post("/customers/<customer_id>/redemptions")
def redeem(customer_id: str) -> Response[Any]:
    key = idempotency_key(app)
    request = RedemptionRequest.model_validate_json(app.current_event.body or "")
    channel = request.channel.value if request.channel else None
    item, replay = PointsService().redeem(customer_id, request.points, key, channel, request.note)
    if not replay:
        metrics.add_metric("PointsRedeemed", MetricUnit.Count, request.points)
    return _json(200 if replay else 201, _public(item))


@app.delete("/customers/<customer_id>/redemptions/<redemption_id>")
def cancel(customer_id: str, redemption_id: str) -> Response[Any]:
    return _json(200, _public(PointsService().cancel_redemption(customer_id, redemption_id)))


@app.get("/customers/<customer_id>/points")
def points(customer_id: str) -> Response[Any]:
    return _json(200, PointsService().points(customer_id))


@app.get("/customers/<customer_id>/ledger")
def ledger(customer_id: str) -> Response[Any]:
    raw_limit = app.current_event.get_query_string_value("limit", "25") or "25"
    if not raw_limit.isdigit():
        raise InvalidInput("limit must be a number 1..100", field="limit")
    cursor = app.current_event.get_query_string_value("cursor")
    return _json(200, PointsService().ledger(customer_id, int(raw_limit), cursor))


@app.get("/points/rules")
def list_rules() -> Response[Any]:
    rules = PointsService().list_rules()
    return _json(200, {"rules": [r.model_dump(mode="json", exclude_none=True) for r in rules]})


@app.post("/points/rules")
def create_rule() -> Response[Any]:
    rule = AccrualRule.model_validate_json(app.current_event.body or "")  # bad JSON or fields: 422
    PointsService().create_rule(rule)
    logger.info("accrual rule created", extra={"rule_id": rule.rule_id, "kind": rule.kind.value})
    return _json(201, rule.model_dump(mode="json", exclude_none=True))


@app.post("/points/rules/<rule_id>/deactivate")
def deactivate_rule(rule_id: str) -> Response[Any]:
    rule = PointsService().deactivate_rule(rule_id)
    logger.info("accrual rule deactivated", extra={"rule_id": rule_id})
    return _json(200, rule.model_dump(mode="json", exclude_none=True))


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in {"pk", "sk", "entity"}}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@requires("table_name", "staff_issuer")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
