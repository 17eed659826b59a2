"""GET /kpis/daily/{day}: the day's KPIs per channel (staff)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.analytics.kpis import Kpis, parse_day
from loyalty.http import api
from loyalty.observability import logger

app = api("Loyalty KPI API", "/openapi/kpis.json")


@app.get("/kpis/daily/<day>", summary="KPIs of one day per channel", tags=["kpis"])
def daily(day: Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$")]) -> dict[str, Any]:
    return Kpis().daily(parse_day(day))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
