"""Table stream -> concern queues: the one router (see loyalty.routing.router for the table)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.routing.router import QUEUE_SETTINGS
from loyalty.routing.service import route_record
from loyalty.settings import requires

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    sent = route_record(change.new_image if change else None, change.old_image if change else None)
    if sent:
        metrics.add_metric("EventsRouted", MetricUnit.Count, len(sent))
        logger.info("event routed", extra={"concerns": sent})


@logger.inject_lambda_context
@metrics.log_metrics
@requires(*QUEUE_SETTINGS)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
