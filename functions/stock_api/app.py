"""Stock and click-and-collect API: availability, reservations, back-in-stock alerts, SKU config."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from loyalty.errors import InvalidInput
from loyalty.http import api, idempotency_key, principal
from loyalty.observability import logger, metrics
from loyalty.settings import requires
from loyalty.stock.model import MAX_SHARDS
from loyalty.stock.service import (
    ID_PATTERN,
    MAX_BATCH_SKUS,
    ReservationRequest,
    StockAlertRequest,
    StockService,
    reservation_view,
)

app = api("Loyalty stock API", "/openapi/stock.json")
Id = Annotated[str, Path(pattern=ID_PATTERN)]


class SkuConfig(BaseModel):
    model_config = ConfigDict(defer_build=True)
    low_stock_threshold: int | None = Field(default=None, ge=0, le=100_000)
    shards: int | None = Field(default=None, ge=1, le=MAX_SHARDS)


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.get("/stock/<sku>", summary="Availability of a SKU per location and in total", tags=["stock"])
def stock_of(sku: Id) -> dict[str, Any]:
    return StockService().availability(sku)


@app.get("/stock", summary="Availability of many SKUs (product pages)", tags=["stock"])
def stock_batch(
    skus: Annotated[str, Query(min_length=1, max_length=4000)],
    location: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> dict[str, Any]:
    wanted = list(dict.fromkeys(s.strip() for s in skus.split(",") if s.strip()))
    if not wanted or len(wanted) > MAX_BATCH_SKUS:
        raise InvalidInput(f"give 1 to {MAX_BATCH_SKUS} SKUs", code="invalid_skus", field="skus")
    return {"items": StockService().batch_availability(wanted, location)}


@app.put(
    "/stock/<sku>/config", summary="Low-stock threshold and shard count of a SKU (staff)", tags=["stock"]
)
def configure(sku: Id, config: SkuConfig) -> dict[str, Any]:
    return StockService().configure_sku(sku, config.low_stock_threshold, config.shards)


@app.post("/reservations", summary="Reserve units for click and collect", tags=["reservations"])
def reserve(request: ReservationRequest) -> Response[dict[str, Any]]:
    item, created = StockService().create_reservation(request, idempotency_key(app))
    if created:
        metrics.add_metric("ReservationsCreated", MetricUnit.Count, 1)
        logger.info(
            "reservation created", extra={"reservation_id": item["reservation_id"], "sku": request.sku}
        )
    return _json(201 if created else 200, reservation_view(item))


@app.get("/reservations/<reservation_id>", summary="One reservation", tags=["reservations"])
def reservation(reservation_id: Id) -> dict[str, Any]:
    return reservation_view(StockService().get_reservation(reservation_id))


@app.post(
    "/reservations/<reservation_id>/collect", summary="Collected in store (staff)", tags=["reservations"]
)
def collect(reservation_id: Id) -> dict[str, Any]:
    item = StockService().collect_reservation(reservation_id, caller=principal(app))
    metrics.add_metric("ReservationsCollected", MetricUnit.Count, 1)
    return reservation_view(item)


@app.delete("/reservations/<reservation_id>", summary="Release a reservation", tags=["reservations"])
def release(reservation_id: Id) -> dict[str, Any]:
    return reservation_view(StockService().release_reservation(reservation_id))


@app.post("/customers/<customer_id>/stock-alerts", summary="Back-in-stock alert", tags=["stock"])
def subscribe(
    customer_id: Annotated[str, Path(min_length=1, max_length=64)], request: StockAlertRequest
) -> Response[dict[str, Any]]:
    return _json(201, StockService().subscribe_alert(customer_id, request))


@app.get(
    "/customers/<customer_id>/reservations",
    summary="A customer's reservations, newest first (staff)",
    tags=["reservations"],
)
def customer_reservations(customer_id: Annotated[str, Path(min_length=1, max_length=64)]) -> dict[str, Any]:
    return {"reservations": StockService().customer_reservations(customer_id)}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@requires("table_name", "staff_issuer")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
