"""Scheduled (and on demand): release reservations whose hold has ended, flag those about to end."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.settings import requires
from loyalty.stock.service import StockService


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    released, expiring = StockService().sweep_reservations()
    metrics.add_metric("ReservationsExpired", MetricUnit.Count, len(released))
    metrics.add_metric("ReservationsExpiringFlagged", MetricUnit.Count, len(expiring))
    logger.info(
        "reservations swept",
        extra={"released": len(released), "expiring": len(expiring), "ids": released[:50]},
    )
    return {"released": len(released), "expiring": len(expiring)}
