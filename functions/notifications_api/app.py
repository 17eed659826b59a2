"""GET /customers/{customer_id}/notifications: sent, deferred or suppressed (and why), outbox."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.http import api
from loyalty.notify.views import history, outbox
from loyalty.observability import logger
from loyalty.settings import requires

app = api("Loyalty notifications API", "/openapi/notifications.json")


@app.get(
    "/customers/<customer_id>/notifications",
    summary="A customer's notifications: history (with suppression reasons) and outbox",
    tags=["notifications"],
)
def notifications(
    customer_id: Annotated[str, Path(pattern=r"^c_[0-9A-Za-z_-]{1,64}$")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "history": history(customer_id, limit=limit * 3),
        "outbox": outbox(customer_id, limit=limit),
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@requires("table_name", "staff_issuer")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
