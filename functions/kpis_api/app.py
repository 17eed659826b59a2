"""GET /kpis/daily/{day}: the day's KPIs per channel and store; GET /kpis/daily?from&to[&store] (staff)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.analytics.kpis import Kpis, parse_day
from loyalty.http import api
from loyalty.observability import logger
from loyalty.settings import requires

DAY = r"^\d{4}-\d{2}-\d{2}$"
app = api("Loyalty KPI API", "/openapi/kpis.json")


@app.get("/kpis/daily/<day>", summary="KPIs of one day per channel", tags=["kpis"])
def daily(day: Annotated[str, Path(pattern=DAY)]) -> dict[str, Any]:
    return Kpis().daily(parse_day(day))


@app.get(
    "/kpis/daily", summary="KPIs of each day of a range (at most 92) per channel and store", tags=["kpis"]
)
def daily_range(
    from_: Annotated[str, Query(alias="from", pattern=DAY)],
    to: Annotated[str, Query(pattern=DAY)],
    store: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    return Kpis().range(parse_day(from_, "from"), parse_day(to, "to"), store)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@requires("table_name", "staff_issuer")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
