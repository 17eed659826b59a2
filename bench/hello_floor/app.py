"""The cold-start floor of any function that talks to DynamoDB: boto3 + a Powertools Logger."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    client = boto3.client("dynamodb")  # created on first use, as loyalty.aws does
    return {"statusCode": 200, "body": str(client.meta.region_name)}
