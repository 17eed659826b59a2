"""Scheduled (and on demand): release every reservation whose hold has ended."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.stock.service import release_expired

tracer = Tracer()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    released = release_expired()
    metrics.add_metric("ReservationsExpired", MetricUnit.Count, len(released))
    logger.info("expired reservations released", extra={"count": len(released), "ids": released[:50]})
    return {"released": len(released)}
