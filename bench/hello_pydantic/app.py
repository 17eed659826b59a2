"""The libraries' floor of a scheduled job: the floor (boto3 + a Powertools Logger) + pydantic.

What the brief requires of any function beyond the floor: its settings are a pydantic model that
fails at cold start when a value is missing. One model, validated on the first call.
"""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

logger = Logger()


class Job(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)
    source: str = Field(min_length=1)
    detail_type: str = Field(alias="detail-type", min_length=1)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = Job.model_validate(event)
    client = boto3.client("dynamodb")  # created on first use, as loyalty.aws does
    return {"statusCode": 200, "body": f"{job.source} {client.meta.region_name}"}
