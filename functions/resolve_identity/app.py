"""Identity queue -> one customer per event: resolve, attach, merge, apply profile facts, attribute."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.identity.resolve import Resolver
from loyalty.observability import logger, metrics
from loyalty.queue import kind_of
from loyalty.routing.router import RoutedEvent, apply_each, routed_events
from loyalty.settings import requires

processor = BatchProcessor(event_type=EventType.SQS)


def resolve(resolver: Resolver, routed: RoutedEvent) -> None:
    event = routed.event
    logger.append_keys(event_id=event.event_id, channel=event.channel.value)
    if routed.stage != "recorded":
        logger.warning("not a recorded-stage event, ignored", extra={"stage": routed.stage})
        return
    result = resolver.resolve(event)  # TransientError raises: this record is retried
    for name, count in result.counts().items():
        metrics.add_metric(name, MetricUnit.Count, count)
    logger.info("event resolved", extra=result.log_keys())


def record_handler(record: SQSRecord) -> None:
    """A lone event or a bundle (in order); a failing event lets the others resolve, then fails the record."""
    events = routed_events(record.body, kind_of(record))  # malformed: fails -> retried -> DLQ
    resolver = Resolver()
    error = apply_each(events, lambda routed: resolve(resolver, routed))
    if error is not None:
        raise error


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
