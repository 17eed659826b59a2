"""Table stream -> notification intents (the catalogue), each queued, deferred or suppressed once."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.notify.fanout import Fanout
from loyalty.observability import logger, metrics
from loyalty.settings import requires

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    outcomes = Fanout().fan_out(change.new_image if change else None, change.old_image if change else None)
    for outcome in outcomes:
        metrics.add_metric(f"Notifications{outcome.status.capitalize()}", MetricUnit.Count, 1)
        logger.info("notification planned", extra=asdict(outcome))


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
