"""The libraries' floor of an API function: the floor + pydantic + Powertools' event handler.

What the brief requires of an API beyond the floor: Powertools' HTTP resolver with validation on
(OpenAPI served) and pydantic models for what a route returns. One route, one model.
"""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

logger = Logger()
app = APIGatewayHttpResolver(enable_validation=True)


class Balance(BaseModel):
    model_config = ConfigDict(defer_build=True)
    customer_id: str
    region: str


@app.get("/customers/<customer_id>/points")
def points(customer_id: str) -> Balance:
    client = boto3.client("dynamodb")  # created on first use, as loyalty.aws does
    return Balance(customer_id=customer_id, region=str(client.meta.region_name))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
