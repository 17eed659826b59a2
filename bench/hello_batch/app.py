"""The libraries' floor of a queue or stream consumer: the floor + pydantic + Powertools' batch.

What the brief requires of a consumer beyond the floor: records parsed by a pydantic model, and
partial batch failures reported by Powertools' batch utility. One model, one record handler.
"""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


class Body(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")
    type: str | None = None


def record_handler(record: SQSRecord) -> None:
    body = Body.model_validate_json(record.body)
    boto3.client("dynamodb")  # created on first use, as loyalty.aws does
    logger.debug("record", extra={"type": body.type})


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event, record_handler, processor, context)
