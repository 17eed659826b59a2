"""Ingest queue -> event log: store each canonical event once (duplicates are acknowledged), then
list the batch's events in the day index in one write per day (``EventLog.index``)."""

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


def _record(event: ChannelEvent, log: EventLog) -> ChannelEvent:
    """Put ``event``; the version the log holds, for the day index."""
    logger.append_keys(event_id=event.event_id, channel=event.channel.value)
    if log.put(event):
        metrics.add_metric("EventsRecorded", MetricUnit.Count, 1)
        logger.info("event recorded", extra={"type": event.type.value})
        return event
    metrics.add_metric("DuplicateEventsIgnored", MetricUnit.Count, 1)
    logger.info("duplicate event ignored", extra={"type": event.type.value})
    return log.logged(event)


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    log = EventLog()
    stored: list[ChannelEvent] = []  # the batch's events that reached the log (new or already there)

    def record_handler(record: SQSRecord) -> None:
        parsed = ChannelEvent.model_validate_json(record.body)  # malformed: fails -> retried -> DLQ
        stored.append(_record(parsed, log))

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # a failure here raises: the whole batch comes back, its puts find their events, and it is listed
    log.index(stored)
    return response
