"""Customer API (staff): the 360 view, lookup, edits, timeline, merge reviews, unmerge, erasure."""

from __future__ import annotations

from collections.abc import Callable
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


def route[F: Callable[..., Any]](
    method: str, path: str, summary: str, tag: str = "customers"
) -> Callable[[F], F]:
    """A route of this API: its OpenAPI summary and tag, and the errors every route answers."""
    return app.route(path, method, summary=summary, tags=[tag], responses=ERRORS)


def _staff() -> str:
    caller = principal(app)
    return (caller.email or caller.subject) if caller else "staff"


@route("GET", "/customers/<customer_id>", "Customer 360")
def get_customer(customer_id: CustomerId) -> CustomerView:
    return CustomerService().view(customer_id)


@route("GET", "/customers", "Find a customer by one identifier")
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


@route("PATCH", "/customers/<customer_id>", "Edit profile, preferences, consents")
def patch_customer(customer_id: CustomerId, change: Annotated[CustomerPatch, Body()]) -> CustomerView:
    return CustomerService().patch(customer_id, change)


@route("GET", "/customers/<customer_id>/timeline", "Cross-channel timeline")
def timeline(
    customer_id: CustomerId,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    before: Annotated[str | None, Query(max_length=128)] = None,
) -> TimelinePage:
    return CustomerService().timeline(customer_id, limit, before)


@route("POST", "/customers/<customer_id>/unmerge", "Undo the latest merge", "merges")
def unmerge(
    customer_id: CustomerId, request: Annotated[UnmergeRequest | None, Body()] = None
) -> UnmergeResult:
    result = CustomerService().unmerge(customer_id, request.merge_id if request else None)
    metrics.add_metric("CustomersUnmerged", MetricUnit.Count, len(result.restored_ids))
    return result


@route("DELETE", "/customers/<customer_id>", "Erase a customer (right to erasure)")
def erase(customer_id: CustomerId) -> ErasureResult:
    result = CustomerService().erase(customer_id)
    metrics.add_metric("CustomersErased", MetricUnit.Count, 1)
    return result


@route("GET", "/merge-reviews", "Quarantined merges", "merges")
def list_reviews(
    status: Annotated[str, Query(pattern="^(pending|approved|rejected)$")] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ReviewPage:
    return CustomerService().list_reviews(status, limit, cursor)


@route("POST", "/merge-reviews/<review_id>", "Approve or reject a quarantined merge", "merges")
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
