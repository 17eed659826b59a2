"""Scheduled (and on demand): release deferred notifications whose quiet hours or reminder time passed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.notify.fanout import describe, release_due
from loyalty.observability import logger, metrics
from loyalty.settings import CHANNEL_QUEUES, requires


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name", *CHANNEL_QUEUES)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = release_due()
    counts = describe(outcomes)
    for status, count in counts.items():
        metrics.add_metric(f"DeferredNotifications{status.capitalize()}", MetricUnit.Count, count)
    logger.info("deferred notifications released", extra={"counts": counts, "trigger": event.get("source")})
    return {"released": len(outcomes), "counts": counts}
