"""Points queue -> the customer's ledger: order events and merges, each applied exactly once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.models.merges import CustomerMerged
from loyalty.observability import logger, metrics
from loyalty.points.service import PointsService
from loyalty.queue import kind_of
from loyalty.routing.router import RoutedEvent, apply_each, routed_events
from loyalty.settings import requires

processor = BatchProcessor(event_type=EventType.SQS)
MERGE_TYPES = {"customer.merged", "customer.unmerged"}


def record_handler(record: SQSRecord) -> None:
    if kind_of(record) in MERGE_TYPES:
        merged = CustomerMerged.model_validate_json(record.body)
        outcomes = PointsService().apply_merge(merged)
        metrics.add_metric("PointsLedgersMerged", MetricUnit.Count, outcomes.count(merged.kind))
        logger.info("points merge applied", extra={"merge_id": merged.merge_id, "outcomes": outcomes})
        return
    events = routed_events(record.body, kind_of(record))  # malformed: fails -> retried -> DLQ
    service = PointsService()

    def apply(routed: RoutedEvent) -> None:
        outcome = service.apply(routed)
        metrics.add_metric(f"Points_{outcome}", MetricUnit.Count, 1)
        logger.info(
            "points event applied",
            extra={"event_id": routed.event.event_id, "type": routed.event.type.value, "outcome": outcome},
        )

    error = apply_each(events, apply)  # each applied (once); the rest still go; the first error raised
    if error is not None:
        raise error


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
