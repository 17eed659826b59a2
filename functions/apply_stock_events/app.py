"""Stock queue -> stock figures: sales, orders, cancels, returns, counts, adjustments, lapsed holds."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.queue import kind_of
from loyalty.settings import requires
from loyalty.stock.service import StockService

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(stock: StockService, record: SQSRecord) -> None:
    touched = stock.apply(record.body, kind_of(record))  # malformed or transient: raises -> retried -> DLQ
    metrics.add_metric("StockMessagesApplied", MetricUnit.Count, 1)
    logger.info(
        "stock message applied",
        extra={"message_id": record.message_id, "touched": [f"{s}@{loc}" for s, loc in sorted(touched)]},
    )


@logger.inject_lambda_context
@metrics.log_metrics
@requires("table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    with StockService().batch((r.get("body", ""), kind_of(r)) for r in records) as stock:
        return process_partial_response(
            event=event, record_handler=partial(record_handler, stock), processor=processor, context=context
        )
