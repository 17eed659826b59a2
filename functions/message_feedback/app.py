"""Feedback queue -> bounces mark addresses undeliverable, complaints and SMS STOP opt out.

The queue carries SES event publishing records (via SNS), End User Messaging inbound SMS (via
SNS) and the router's ``message.bounced`` events; ``loyalty.notify.feedback`` tells them apart.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.notify.feedback import handle
from loyalty.observability import logger, metrics
from loyalty.settings import requires

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

_METRIC = {
    "undeliverable": "AddressesUndeliverable",
    "deliverable": "AddressesDeliverableAgain",
    "complaint": "Complaints",
    "sms_stop": "SmsStops",
}


def record_handler(record: SQSRecord) -> None:
    effect = handle(record.body)  # a failure (poison included) fails the record: retried, then the DLQ
    logger.info("feedback handled", extra={"kind": effect.kind, "count": effect.count})
    metric = _METRIC.get(effect.kind)
    if metric and effect.count:
        metrics.add_metric(metric, MetricUnit.Count, effect.count)


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
