"""Channel queue -> provider (one codebase, one function per channel: NOTIFY_CHANNEL)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.notify.sender import SendFailed, backoff, send
from loyalty.observability import logger, metrics
from loyalty.settings import CHANNEL_QUEUES, get_settings, requires

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    body = json.loads(record.body)
    channel = get_settings().notify_channel
    logger.append_keys(message_id=body["message_id"], customer_id=body["customer_id"], channel=channel)
    try:
        result = send(body["customer_id"], body["message_id"], channel)
    except SendFailed:
        metrics.add_metric("NotificationSendFailures", MetricUnit.Count, 1)
        backoff(channel, record.receipt_handle, int(record.attributes.approximate_receive_count))
        raise
    metrics.add_metric(f"Notifications{result.status.title().replace('_', '')}", MetricUnit.Count, 1)
    logger.info("notification handled", extra={"status": result.status, "next_channel": result.next_channel})


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name", "notify_channel", *CHANNEL_QUEUES)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
