"""Analytics queue -> daily KPIs per channel and store (each event counted once, summed per batch)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from loyalty.analytics.kpis import Kpis
from loyalty.errors import TransientError
from loyalty.observability import logger, metrics
from loyalty.queue import kind_of
from loyalty.routing.router import RoutedEvent, routed_events
from loyalty.settings import requires


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    failures: list[dict[str, str]] = []
    ids: list[str] = []
    batch: list[RoutedEvent] = []
    for record in event["Records"]:
        try:
            batch.extend(routed_events(record["body"], kind_of(record)))  # a bundle's, or a lone event
            ids.append(record["messageId"])
        except ValidationError as err:  # malformed: fails alone -> retried -> DLQ
            logger.warning("malformed message", extra={"message_id": record["messageId"], "error": str(err)})
            failures.append({"itemIdentifier": record["messageId"]})
    if batch:
        try:
            counted = Kpis().apply_batch(batch)
        except TransientError:  # throttled or raced: a transaction is all or nothing, retry them all
            logger.exception("batch not counted, handed back for retry", extra={"events": len(batch)})
            return {"batchItemFailures": failures + [{"itemIdentifier": i} for i in ids]}
        metrics.add_metric("KpiEventsCounted", MetricUnit.Count, sum(counted))
        if len(counted) - sum(counted):
            logger.info("events already counted", extra={"duplicates": len(counted) - sum(counted)})
    return {"batchItemFailures": failures}
