"""Scheduled: re-evaluate tiers on rolling 12-month qualifying points (downgrade after a grace)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.points.service import PointsService

SAFETY_MARGIN_S = 15.0


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run on the schedule or on demand (any EventBridge scheduled event); resumes where it stopped."""
    budget = max(1.0, context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S)
    report = PointsService().review_tiers(budget_s=budget)
    metrics.add_metric("TiersReviewed", MetricUnit.Count, report.customers)
    logger.info("tiers reviewed", extra=report.to_dict())
    return report.to_dict()
