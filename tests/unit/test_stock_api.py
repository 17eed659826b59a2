"""Stock API: availability, reservations (create, replay, collect, release, expiry), alerts, config."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.stock import model, service
from loyalty.stock.service import StockService
from tests.support.lambdas import LambdaContext, http_api_event, load_function
from tests.support.stock import adjusted, apply_message, at, collection, figures, message, profile

SKU = "SKU-JACKET-M"
STORE = "MAD-SOL"
CUSTOMER = "c_0123456789abcdef"


@pytest.fixture
def api(stack: Resolver) -> Any:
    profile(CUSTOMER)
    apply_message(message(adjusted(SKU, STORE, 5, at(0))))
    apply_message(message(adjusted(SKU, "WEB-FULFILMENT", 2, at(0))))
    return load_function("stock_api")


def call(
    api: Any,
    ctx: LambdaContext,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    resource: str | None = None,
    role: str | None = "admin",
) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body) if body is not None else None
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    machine = (resource or path).endswith("/config")  # SKU config is the ERP's (AWS_IAM) route
    event = http_api_event(
        method,
        path,
        raw,
        hdrs,
        path_parameters=params,
        query=query,
        resource=resource,
        role=role,
        iam=machine,
    )
    resp = api.handler(event, ctx)
    return resp["statusCode"], json.loads(resp["body"])


def reserve(
    api: Any, ctx: LambdaContext, quantity: int = 2, key: str = "k-1", customer: str = CUSTOMER
) -> tuple[int, dict[str, Any]]:
    body = {"customer_id": customer, "sku": SKU, "quantity": quantity, "location_id": STORE}
    return call(api, ctx, "POST", "/reservations", body=body, headers={"Idempotency-Key": key})


def test_stock_of_a_sku_per_location_total_and_freshness(api: Any, lambda_context: LambdaContext) -> None:
    status, body = call(
        api, lambda_context, "GET", f"/stock/{SKU}", params={"sku": SKU}, resource="/stock/{sku}"
    )
    assert status == 200
    assert (body["available"], body["online_available"]) == (7, 2)
    by_loc = {loc["location_id"]: loc for loc in body["locations"]}
    assert by_loc[STORE]["available"] == 5
    assert by_loc[STORE]["updated_at"]


def test_stock_of_an_unknown_sku_is_404(api: Any, lambda_context: LambdaContext) -> None:
    status, body = call(
        api, lambda_context, "GET", "/stock/NOPE", params={"sku": "NOPE"}, resource="/stock/{sku}"
    )
    assert (status, body["error"]["code"]) == (404, "sku_not_found")


def test_stock_path_with_a_bad_sku_is_422(api: Any, lambda_context: LambdaContext) -> None:
    status, _ = call(api, lambda_context, "GET", "/stock/a b", params={"sku": "a b"}, resource="/stock/{sku}")
    assert status == 422


def test_batch_stock_at_one_location(api: Any, lambda_context: LambdaContext) -> None:
    status, body = call(
        api, lambda_context, "GET", "/stock", query={"skus": f"{SKU},OTHER", "location": STORE}
    )
    assert status == 200
    assert [(i["sku"], i["available"]) for i in body["items"]] == [(SKU, 5), ("OTHER", 0)]
    status, body = call(api, lambda_context, "GET", "/stock", query={"skus": SKU})
    assert body["items"][0]["available"] == 7


def test_batch_stock_errors(api: Any, lambda_context: LambdaContext) -> None:
    too_many = ",".join(f"S{i}" for i in range(51))
    status, body = call(api, lambda_context, "GET", "/stock", query={"skus": too_many})
    assert (status, body["error"]["code"]) == (400, "invalid_skus")
    assert call(api, lambda_context, "GET", "/stock")[0] == 422


def test_reservation_holds_stock_and_a_replay_returns_it(api: Any, lambda_context: LambdaContext) -> None:
    status, first = reserve(api, lambda_context)
    assert status == 201
    assert first["status"] == "ready"
    assert (figures(SKU, STORE).reserved, figures(SKU, STORE).available) == (2, 3)
    status, again = reserve(api, lambda_context)
    assert status == 200
    assert again["reservation_id"] == first["reservation_id"]
    assert figures(SKU, STORE).reserved == 2


def test_reservation_errors(api: Any, lambda_context: LambdaContext) -> None:
    reserve(api, lambda_context)
    status, body = reserve(api, lambda_context, quantity=3)  # same key, other body
    assert (status, body["error"]["code"]) == (409, "idempotency_key_reused")
    status, body = reserve(api, lambda_context, quantity=4, key="k-2")  # only 3 left
    assert (status, body["error"]["code"]) == (409, "insufficient_stock")
    status, body = reserve(api, lambda_context, key="k-3", customer="c_nobody")
    assert (status, body["error"]["code"]) == (404, "customer_not_found")
    body_ok = {"customer_id": CUSTOMER, "sku": SKU, "quantity": 1, "location_id": STORE}
    status, body = call(api, lambda_context, "POST", "/reservations", body=body_ok)
    assert (status, body["error"]["field"]) == (400, "Idempotency-Key")
    status, _ = call(
        api,
        lambda_context,
        "POST",
        "/reservations",
        body={**body_ok, "quantity": 0},
        headers={"Idempotency-Key": "x"},
    )
    assert status == 422


def _rid_call(
    api: Any, ctx: LambdaContext, method: str, rid: str, suffix: str = ""
) -> tuple[int, dict[str, Any]]:
    resource = "/reservations/{reservation_id}" + suffix
    return call(
        api, ctx, method, f"/reservations/{rid}{suffix}", params={"reservation_id": rid}, resource=resource
    )


def test_collect_is_a_sale_and_is_idempotent(api: Any, lambda_context: LambdaContext) -> None:
    rid = reserve(api, lambda_context)[1]["reservation_id"]
    status, body = _rid_call(api, lambda_context, "POST", rid, "/collect")
    assert (status, body["status"]) == (200, "collected")
    stock = figures(SKU, STORE)
    assert (stock.on_hand, stock.reserved, stock.available) == (3, 0, 3)
    assert _rid_call(api, lambda_context, "POST", rid, "/collect")[0] == 200
    assert figures(SKU, STORE).on_hand == 3
    status, body = _rid_call(api, lambda_context, "DELETE", rid)
    assert (status, body["error"]["code"]) == (409, "reservation_collected")


def test_release_gives_units_back_and_a_released_one_cannot_be_collected(
    api: Any, lambda_context: LambdaContext
) -> None:
    rid = reserve(api, lambda_context)[1]["reservation_id"]
    status, body = _rid_call(api, lambda_context, "DELETE", rid)
    assert (status, body["status"]) == (200, "released")
    assert _rid_call(api, lambda_context, "DELETE", rid)[0] == 200
    assert (figures(SKU, STORE).reserved, figures(SKU, STORE).available) == (0, 5)
    status, body = _rid_call(api, lambda_context, "POST", rid, "/collect")
    assert (status, body["error"]["code"]) == (409, "reservation_not_active")
    assert _rid_call(api, lambda_context, "GET", rid)[1]["status"] == "released"


def test_unknown_reservation_is_404(api: Any, lambda_context: LambdaContext) -> None:
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/collect")):
        status, body = _rid_call(api, lambda_context, method, "r_missing", suffix)
        assert (status, body["error"]["code"]) == (404, "reservation_not_found")


def test_reservation_records_the_contract_attributes(api: Any, lambda_context: LambdaContext) -> None:
    rid = reserve(api, lambda_context)[1]["reservation_id"]
    item = StockService().store.get_reservation(rid)
    assert item is not None
    assert {k: item[k] for k in ("entity", "status", "sku", "location_id", "quantity", "customer_id")} == {
        "entity": "reservation",
        "status": "ready",
        "sku": SKU,
        "location_id": STORE,
        "quantity": 2,
        "customer_id": CUSTOMER,
    }
    hold = datetime.fromisoformat(item["hold_until"])
    assert timedelta(hours=47) < hold - datetime.now(UTC) <= timedelta(hours=48)
    assert item["expires_at"] == int((hold + timedelta(hours=24)).timestamp())


def test_expired_reservations_are_released_by_the_job(
    api: Any, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = reserve(api, lambda_context)[1]["reservation_id"]
    job = load_function("release_reservations")
    assert job.handler({"source": "aws.scheduler"}, lambda_context) == {"released": 0, "expiring": 0}
    # 43 hours later it is flagged as expiring, once (the reminder's trigger)
    soon = datetime.now(UTC) + timedelta(hours=43)
    assert StockService().flag_expiring(soon) == [rid]
    assert StockService().flag_expiring(soon) == []
    assert StockService().store.get_reservation(rid)["expiring_at"] == model.stamp(soon)  # type: ignore[index]
    later = datetime.now(UTC) + timedelta(hours=49)
    # a collect after the hold ended is refused
    monkeypatch.setattr(service, "_now", lambda: later)
    status, body = _rid_call(api, lambda_context, "POST", rid, "/collect")
    assert (status, body["error"]["code"]) == (409, "reservation_expired")
    assert StockService().release_expired(now=later) == [rid]
    assert StockService().release_expired(now=later) == []
    assert _rid_call(api, lambda_context, "GET", rid)[1]["status"] == "expired"
    assert (figures(SKU, STORE).reserved, figures(SKU, STORE).available) == (0, 5)


def test_stock_alert_subscription(api: Any, lambda_context: LambdaContext) -> None:
    path = f"/customers/{CUSTOMER}/stock-alerts"
    resource = "/customers/{customer_id}/stock-alerts"
    params = {"customer_id": CUSTOMER}
    status, body = call(
        api, lambda_context, "POST", path, body={"sku": SKU}, params=params, resource=resource
    )
    assert (status, body["location_id"]) == (201, model.ONLINE)
    status, _ = call(
        api,
        lambda_context,
        "POST",
        path,
        body={"sku": SKU, "location_id": STORE},
        params=params,
        resource=resource,
    )
    assert status == 201
    alerts = collection(SKU, model.ALERT_ENTITY)
    assert sorted(a["sk"] for a in alerts) == [f"ALERT#{STORE}#{CUSTOMER}", f"ALERT#ONLINE#{CUSTOMER}"]
    status, body = call(
        api,
        lambda_context,
        "POST",
        "/customers/c_x/stock-alerts",
        body={"sku": SKU},
        params={"customer_id": "c_x"},
        resource=resource,
    )
    assert (status, body["error"]["code"]) == (404, "customer_not_found")
    status, _ = call(api, lambda_context, "POST", path, body={"sku": ""}, params=params, resource=resource)
    assert status == 422


def test_sku_config_sets_threshold_and_rebalances_shards(api: Any, lambda_context: LambdaContext) -> None:
    status, body = call(
        api,
        lambda_context,
        "PUT",
        f"/stock/{SKU}/config",
        body={"low_stock_threshold": 1, "shards": 4},
        params={"sku": SKU},
        resource="/stock/{sku}/config",
    )
    assert status == 200
    assert body["rebalanced"][STORE] == [2, 1, 1, 1]
    assert figures(SKU, STORE).available == 5
    status, _ = call(
        api,
        lambda_context,
        "PUT",
        f"/stock/{SKU}/config",
        body={"shards": 99},
        params={"sku": SKU},
        resource="/stock/{sku}/config",
    )
    assert status == 422


@pytest.mark.parametrize(
    ("sample", "status"),
    [
        ("api/stock_get_sku.json", 200),
        ("api/stock_batch.json", 200),
        ("api/reservation_create.json", 201),
        ("api/reservation_collect.json", 404),
        ("api/reservation_release.json", 404),
        ("api/stock_alert_subscribe.json", 201),
    ],
)
def test_sam_local_samples_reach_their_routes(
    sample: str, status: int, api: Any, lambda_context: LambdaContext, sample_issuer: str
) -> None:
    from tests.support.lambdas import load_event

    assert api.handler(load_event(sample), lambda_context)["statusCode"] == status


def test_schedule_sample_runs_the_job(stack: Resolver, lambda_context: LambdaContext) -> None:
    from tests.support.lambdas import load_event

    job = load_function("release_reservations")
    assert job.handler(load_event("schedule/release_reservations.json"), lambda_context)["released"] == 0
