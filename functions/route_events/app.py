"""Table stream -> concern queues: the one router (see loyalty.routing.router for the table)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.routing.router import QUEUE_SETTINGS
from loyalty.routing.service import route_records
from loyalty.settings import requires


@logger.inject_lambda_context
@metrics.log_metrics
@requires(*QUEUE_SETTINGS, "table_name")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    records = list(DynamoDBStreamEvent(event).records)
    changes = [
        (r.dynamodb.new_image if r.dynamodb else None, r.dynamodb.old_image if r.dynamodb else None)
        for r in records
    ]
    result = route_records(changes)
    sent = sum(map(len, result.sent.values()))
    if sent:
        metrics.add_metric("EventsRouted", MetricUnit.Count, sent)
        logger.info("events routed", extra={"records": len(records), "messages": sent})
    failures = []
    for index, reason in sorted(result.failed.items()):
        change = records[index].dynamodb
        sequence = change.sequence_number if change else None
        logger.warning("record not routed, retried", extra={"sequence": sequence, "reason": reason})
        failures.append({"itemIdentifier": str(sequence)})
    return {"batchItemFailures": failures}
