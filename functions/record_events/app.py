"""Ingest queue -> event log: store each canonical event once (duplicates are acknowledged)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.eventlog.store import EventLog
from loyalty.models.events import ChannelEvent
from loyalty.observability import logger, metrics
from loyalty.settings import requires

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    event = ChannelEvent.model_validate_json(record.body)  # malformed: fails -> retried -> DLQ
    logger.append_keys(event_id=event.event_id, channel=event.channel.value)
    if EventLog().record(event):
        metrics.add_metric("EventsRecorded", MetricUnit.Count, 1)
        logger.info("event recorded", extra={"type": event.type.value})
    else:
        metrics.add_metric("DuplicateEventsIgnored", MetricUnit.Count, 1)
        logger.info("duplicate event ignored", extra={"type": event.type.value})


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
