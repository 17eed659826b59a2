"""Scheduled: re-evaluate tiers on rolling 12-month qualifying points (downgrade after a grace)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.points import jobs
from loyalty.settings import requires


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run on the schedule or on demand (any EventBridge scheduled event)."""
    return jobs.run(jobs.REVIEW_TIERS, context.get_remaining_time_in_millis())
