"""Analytics queue -> daily KPIs per channel (each event counted once)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.analytics.kpis import Kpis
from loyalty.observability import logger, metrics
from loyalty.routing.router import RoutedEvent

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    routed = RoutedEvent.model_validate_json(record.body)
    logger.append_keys(event_id=routed.event.event_id)
    if Kpis().apply(routed):
        metrics.add_metric("KpiEventsCounted", MetricUnit.Count, 1)
    else:
        logger.info("event already counted")


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
