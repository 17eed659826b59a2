"""Customer self-service API (/me): profile and preferences, points, redemptions, reservations.

Every route acts on the signed-in customer only: the caller is read from the verified JWT claims
(``requestContext.authorizer.jwt.claims``, HTTP API payload 2.0) and resolved to one customer
through the identity graph (``loyalty.selfservice.signin``); no claims answers 401.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.errors import InvalidInput
from loyalty.http import register_error_handlers
from loyalty.observability import logger, metrics
from loyalty.selfservice.service import SelfService
from loyalty.selfservice.signin import Me, customer_principal
from loyalty.selfservice.views import MeRedemptionRequest, MeReservationRequest, MeView, PreferencesPatch
from loyalty.settings import get_settings, requires
from loyalty.stock.service import ID_PATTERN, StockAlertRequest

app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)

ERRORS: dict[int, OpenAPIResponse] = {
    400: {"description": "invalid input (`error.code`, `error.field`)"},
    401: {"description": "no customer sign-in"},
    403: {"description": "the sign-in has no verified email or phone"},
    404: {"description": "not found (or not yours)"},
    409: {"description": "conflicting state, a cap reached, an Idempotency-Key reused"},
    422: {"description": "request failed validation"},
    503: {"description": "temporarily unavailable: retry (Retry-After)"},
}


def _me() -> Me:
    """The signed-in customer (a first sign-in links or creates them)."""
    settings = get_settings()
    principal = customer_principal(app.current_event.raw_event, settings.staff_issuer)
    me = SelfService().finder.find(principal)
    logger.append_keys(customer_id=me.customer_id)
    if me.signed_up:
        metrics.add_metric("CustomerSignInsLinked", MetricUnit.Count, 1)
    return me


def _key(required: bool = True) -> str | None:
    key = (app.current_event.headers.get("idempotency-key") or "").strip()
    if len(key) > 128 or (required and not key):
        raise InvalidInput("an Idempotency-Key header (1-128 chars) is required", field="Idempotency-Key")
    return key or None


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.get("/me", summary="My profile and consents", tags=["me"], responses=ERRORS)
def profile() -> MeView:
    return SelfService().profile(_me())


@app.patch("/me/preferences", summary="Change my consents and language", tags=["me"], responses=ERRORS)
def preferences(change: Annotated[PreferencesPatch, Body()]) -> MeView:
    me = _me()
    return SelfService().update_preferences(me, change, _key(required=False))


@app.get("/me/points", summary="My balance, tier and lots", tags=["me"], responses=ERRORS)
def points() -> dict[str, Any]:
    return SelfService().points(_me())


@app.get("/me/ledger", summary="My points ledger, newest first", tags=["me"], responses=ERRORS)
def ledger(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    return SelfService().ledger(_me(), limit, cursor)


@app.post("/me/redemptions", summary="Spend my points (Idempotency-Key)", tags=["me"], responses=ERRORS)
def redeem(request: Annotated[MeRedemptionRequest, Body()]) -> Response[Any]:
    me = _me()
    item, replay = SelfService().redeem(me, request, _key() or "")
    if not replay:
        metrics.add_metric("PointsRedeemed", MetricUnit.Count, request.points)
    return _json(200 if replay else 201, item)


@app.delete("/me/redemptions/<redemption_id>", summary="Cancel my redemption", tags=["me"], responses=ERRORS)
def cancel_redemption(redemption_id: Annotated[str, Path(pattern=r"^r_[0-9a-f]{24}$")]) -> dict[str, Any]:
    return SelfService().cancel_redemption(_me(), redemption_id)


@app.get("/me/reservations", summary="My click-and-collect reservations", tags=["me"], responses=ERRORS)
def reservations() -> dict[str, Any]:
    return {"reservations": SelfService().reservations(_me())}


@app.post("/me/reservations", summary="Reserve for click and collect", tags=["me"], responses=ERRORS)
def reserve(request: Annotated[MeReservationRequest, Body()]) -> Response[Any]:
    me = _me()
    view, created = SelfService().reserve(me, request, _key() or "")
    if created:
        metrics.add_metric("ReservationsCreated", MetricUnit.Count, 1)
        logger.info(
            "reservation created", extra={"reservation_id": view["reservation_id"], "sku": request.sku}
        )
    return _json(201 if created else 200, view)


@app.delete(
    "/me/reservations/<reservation_id>", summary="Cancel my reservation", tags=["me"], responses=ERRORS
)
def cancel_reservation(reservation_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> dict[str, Any]:
    return SelfService().cancel_reservation(_me(), reservation_id)


@app.post("/me/stock-alerts", summary="Tell me when a SKU is back", tags=["me"], responses=ERRORS)
def stock_alert(request: Annotated[StockAlertRequest, Body()]) -> Response[Any]:
    return _json(201, SelfService().subscribe_alert(_me(), request))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@requires("table_name", "staff_issuer")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
