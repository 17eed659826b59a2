"""Customer API (staff): the 360 view, lookup, edits, timeline, merge reviews, unmerge, erasure."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.http import api, principal
from loyalty.identity.service import CustomerService
from loyalty.identity.views import (
    CustomerPatch,
    CustomerView,
    ErasureResult,
    MergeReviewView,
    ReviewDecision,
    ReviewPage,
    TimelinePage,
    UnmergeRequest,
    UnmergeResult,
)
from loyalty.observability import logger, metrics
from loyalty.settings import requires

app = api("Loyalty customer API", "/openapi/customers.json")

CustomerId = Annotated[
    str, Path(pattern=r"^c_[0-9a-f]{32}$", description="customer id (an absorbed one redirects)")
]
ERRORS: dict[int, OpenAPIResponse] = {
    400: {"description": "invalid input (`error.code`, `error.field`)"},
    404: {"description": "unknown or erased customer / review"},
    409: {"description": "conflicting state (already decided, nothing to unmerge, busy)"},
    422: {"description": "request failed validation"},
    503: {"description": "temporarily unavailable: retry (Retry-After)"},
}


def _staff() -> str:
    caller = principal(app)
    return (caller.email or caller.subject) if caller else "staff"


@app.get("/customers/<customer_id>", summary="Customer 360", tags=["customers"], responses=ERRORS)
def get_customer(customer_id: CustomerId) -> CustomerView:
    return CustomerService().view(customer_id)


@app.get("/customers", summary="Find a customer by one identifier", tags=["customers"], responses=ERRORS)
def lookup(
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    card: Annotated[str | None, Query(max_length=64)] = None,
    device: Annotated[str | None, Query(max_length=128)] = None,
    handle: Annotated[str | None, Query(max_length=128)] = None,
    pos: Annotated[str | None, Query(max_length=64)] = None,
) -> CustomerView:
    params = {"email": email, "phone": phone, "card": card, "device": device, "handle": handle, "pos": pos}
    return CustomerService().lookup(params)


@app.patch(
    "/customers/<customer_id>",
    summary="Edit profile, preferences, consents",
    tags=["customers"],
    responses=ERRORS,
)
def patch_customer(customer_id: CustomerId, change: Annotated[CustomerPatch, Body()]) -> CustomerView:
    return CustomerService().patch(customer_id, change)


@app.get(
    "/customers/<customer_id>/timeline",
    summary="Cross-channel timeline",
    tags=["customers"],
    responses=ERRORS,
)
def timeline(
    customer_id: CustomerId,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    before: Annotated[str | None, Query(max_length=128)] = None,
) -> TimelinePage:
    return CustomerService().timeline(customer_id, limit, before)


@app.post(
    "/customers/<customer_id>/unmerge", summary="Undo the latest merge", tags=["merges"], responses=ERRORS
)
def unmerge(
    customer_id: CustomerId, request: Annotated[UnmergeRequest | None, Body()] = None
) -> UnmergeResult:
    result = CustomerService().unmerge(customer_id, request.merge_id if request else None)
    metrics.add_metric("CustomersUnmerged", MetricUnit.Count, len(result.restored_ids))
    return result


@app.delete(
    "/customers/<customer_id>",
    summary="Erase a customer (right to erasure)",
    tags=["customers"],
    responses=ERRORS,
)
def erase(customer_id: CustomerId) -> ErasureResult:
    result = CustomerService().erase(customer_id)
    metrics.add_metric("CustomersErased", MetricUnit.Count, 1)
    return result


@app.get("/merge-reviews", summary="Quarantined merges", tags=["merges"], responses=ERRORS)
def list_reviews(
    status: Annotated[str, Query(pattern="^(pending|approved|rejected)$")] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ReviewPage:
    return CustomerService().list_reviews(status, limit, cursor)


@app.post(
    "/merge-reviews/<review_id>",
    summary="Approve or reject a quarantined merge",
    tags=["merges"],
    responses=ERRORS,
)
def decide(
    review_id: Annotated[str, Path(pattern=r"^r_[0-9a-f]{32}$")], decision: Annotated[ReviewDecision, Body()]
) -> MergeReviewView:
    review = CustomerService().decide(review_id, decision.decision, _staff())
    metrics.add_metric("MergeReviewsDecided", MetricUnit.Count, 1)
    if review.merge_id:
        metrics.add_metric("CustomersMerged", MetricUnit.Count, len(review.customer_ids) - 1)
    return review


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@requires("table_name", "staff_issuer")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
