"""Points functions: the queue consumer (batch failures), the API (answers and errors), the jobs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.errors import Unprocessable
from loyalty.models.events import Channel
from loyalty.models.merges import CustomerMerged
from loyalty.points.service import PointsService, clear_rules_cache
from loyalty.store.table import Table
from tests.support.lambdas import LambdaContext, http_api_event, load_event, load_function
from tests.support.points import order_event, sqs_record
from tests.support.races import race

TODAY = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _fresh_rules(stack: Resolver) -> Iterator[None]:
    clear_rules_cache()
    yield
    clear_rules_cache()


@pytest.fixture
def consumer() -> Any:
    return load_function("apply_points")


@pytest.fixture
def api() -> Any:
    return load_function("points_api")


def _available(customer_id: str, points: int) -> None:
    """Give a customer ``points`` available points (a POS sale old enough to have matured)."""
    svc = PointsService()
    occurred = TODAY - timedelta(days=20)
    svc.apply(
        order_event(
            customer_id,
            f"P-{customer_id}",
            [("SKU", 1, str(points))],
            channel=Channel.POS,
            occurred_at=occurred,
        )
    )
    assert svc.points(customer_id)["available"] == points


def _call(
    api: Any, method: str, path: str, resource: str, params: dict[str, str], **kw: Any
) -> tuple[int, Any]:
    body = kw.pop("body", None)
    event = http_api_event(
        method,
        path,
        json.dumps(body) if isinstance(body, dict) else body,
        headers=kw.pop("headers", None),
        path_parameters=params,
        query=kw.pop("query", None),
        resource=resource,
    )
    resp = api.handler(event, LambdaContext())
    return resp["statusCode"], json.loads(resp["body"])


# ---------------------------------------------------------------------- consumer
def test_consumer_applies_a_batch_and_reports_only_the_bad_record(consumer: Any) -> None:
    # Given a batch with an order, the same order again, a malformed body and a merge
    order = order_event("c_h1", "W-1", [("SKU-A", 1, "42")], occurred_at=TODAY)
    merge = CustomerMerged(kind="merge", merge_id="m9", survivor_id="c_h1", absorbed_ids=["c_h2"], at=TODAY)
    event = {
        "Records": [
            sqs_record(order.model_dump_json(), "order.completed", 0),
            sqs_record(order.model_dump_json(), "order.completed", 1),
            sqs_record("{not json", "order.completed", 2),
            sqs_record(merge.model_dump_json(), "customer.merged", 3),
        ]
    }
    # When the consumer runs
    result = consumer.handler(event, LambdaContext())
    # Then only the malformed record is reported failed, and the order earned once
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert PointsService().points("c_h1")["pending"] == 42


def test_consumer_fails_a_record_without_customer(consumer: Any) -> None:
    # Given an event never attributed to a customer, next to a good one
    good = order_event("c_h4", "W-4", [("SKU-A", 1, "10")], occurred_at=TODAY)
    orphan = good.model_copy(update={"customer_id": None})
    batch = [
        sqs_record(orphan.model_dump_json(), "order.completed", 0),
        sqs_record(good.model_dump_json(), "x", 1),
    ]
    # Then the orphan fails (retried, then DLQ) and the good one is applied
    result = consumer.handler({"Records": batch}, LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert PointsService().points("c_h4")["pending"] == 10


def test_sample_points_message_is_valid(consumer: Any) -> None:
    event = load_event("sqs/apply_points.json")
    event["Records"] += load_event("sqs/points_order_completed.json")["Records"]
    result = consumer.handler(event, LambdaContext())
    assert result == {"batchItemFailures": []}


# ---------------------------------------------------------------------- API
def test_redeem_then_replay_then_cancel(api: Any) -> None:
    _available("c_a1", 100)
    headers = {"Idempotency-Key": "till-7-0001"}
    path, res = "/customers/c_a1/redemptions", "/customers/{customer_id}/redemptions"
    status, body = _call(
        api, "POST", path, res, {"customer_id": "c_a1"}, body={"points": 30}, headers=headers
    )
    assert status == 201
    assert body["points"] == 30
    assert body["status"] == "redeemed"
    replay_status, replay = _call(
        api, "POST", path, res, {"customer_id": "c_a1"}, body={"points": 30}, headers=headers
    )
    assert (replay_status, replay["redemption_id"]) == (200, body["redemption_id"])
    rid = body["redemption_id"]
    status, cancelled = _call(
        api,
        "DELETE",
        f"{path}/{rid}",
        res + "/{redemption_id}",
        {"customer_id": "c_a1", "redemption_id": rid},
    )
    assert (status, cancelled["status"], cancelled["returned"]) == (200, "cancelled", 30)
    status, view = _call(
        api, "GET", "/customers/c_a1/points", "/customers/{customer_id}/points", {"customer_id": "c_a1"}
    )
    assert (status, view["available"]) == (200, 100)
    assert view["lots"][0]["age_days"] == 20
    status, ledger = _call(
        api,
        "GET",
        "/customers/c_a1/ledger",
        "/customers/{customer_id}/ledger",
        {"customer_id": "c_a1"},
        query={"limit": "2"},
    )
    assert status == 200
    assert [e["kind"] for e in ledger["entries"]] == ["adjust", "redeem"]
    assert ledger["next_cursor"]
    status, rest = _call(
        api,
        "GET",
        "/customers/c_a1/ledger",
        "/customers/{customer_id}/ledger",
        {"customer_id": "c_a1"},
        query={"limit": "2", "cursor": ledger["next_cursor"]},
    )
    assert [e["kind"] for e in rest["entries"]] == ["earn"]
    assert rest["entries"][0]["rule_ids"] == ["base-eur"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"points": 500}, {"Idempotency-Key": "k1"}, 422, "insufficient_points"),
        ({"points": 10}, {}, 400, "invalid_input"),
        ({"points": 0}, {"Idempotency-Key": "k2"}, 422, "validation_error"),
        ("{oops", {"Idempotency-Key": "k3"}, 422, "validation_error"),
    ],
)
def test_redemption_errors(api: Any, body: Any, headers: dict[str, str], status: int, code: str) -> None:
    _available("c_a2", 50)
    got, answer = _call(
        api,
        "POST",
        "/customers/c_a2/redemptions",
        "/customers/{customer_id}/redemptions",
        {"customer_id": "c_a2"},
        body=body,
        headers=headers,
    )
    assert (got, answer["error"]["code"]) == (status, code)


def test_reusing_an_idempotency_key_for_another_amount_is_a_conflict(api: Any) -> None:
    _available("c_a3", 50)
    args = (
        "POST",
        "/customers/c_a3/redemptions",
        "/customers/{customer_id}/redemptions",
        {"customer_id": "c_a3"},
    )
    _call(api, *args, body={"points": 10}, headers={"Idempotency-Key": "same"})
    status, answer = _call(api, *args, body={"points": 20}, headers={"Idempotency-Key": "same"})
    assert (status, answer["error"]["code"]) == (409, "idempotency_key_reused")


def test_unknown_customer_and_redemption_are_404(api: Any) -> None:
    status, answer = _call(
        api,
        "GET",
        "/customers/c_nobody/points",
        "/customers/{customer_id}/points",
        {"customer_id": "c_nobody"},
    )
    assert (status, answer["error"]["code"]) == (404, "customer_not_found")
    _available("c_a4", 10)
    status, answer = _call(
        api,
        "DELETE",
        "/customers/c_a4/redemptions/r_x",
        "/customers/{customer_id}/redemptions/{redemption_id}",
        {"customer_id": "c_a4", "redemption_id": "r_x"},
    )
    assert (status, answer["error"]["code"]) == (404, "redemption_not_found")
    status, answer = _call(
        api,
        "GET",
        "/customers/c_a4/ledger",
        "/customers/{customer_id}/ledger",
        {"customer_id": "c_a4"},
        query={"limit": "x"},
    )
    assert (status, answer["error"]["field"]) == (400, "limit")


def test_rules_admin_create_list_deactivate(api: Any) -> None:
    rule = {
        "rule_id": "black-friday-x2",
        "kind": "multiplier",
        "multiplier": "2",
        "channels": ["web", "app"],
        "valid_from": "2026-11-27T00:00:00Z",
        "valid_to": "2026-11-30T00:00:00Z",
        "campaign_id": "bf-2026",
    }
    status, created = _call(api, "POST", "/points/rules", "/points/rules", {}, body=rule)
    assert (status, created["rule_id"]) == (201, "black-friday-x2")
    status, dup = _call(api, "POST", "/points/rules", "/points/rules", {}, body=rule)
    assert (status, dup["error"]["code"]) == (409, "rule_exists")
    status, malformed = _call(api, "POST", "/points/rules", "/points/rules", {}, body="[1, 2")
    assert (status, malformed["error"]["code"]) == (422, "validation_error")
    status, bad = _call(
        api, "POST", "/points/rules", "/points/rules", {}, body={"rule_id": "b", "kind": "base"}
    )
    assert status == 422
    assert "points_per_unit" in bad["error"]["message"]
    status, listed = _call(api, "GET", "/points/rules", "/points/rules", {})
    ids = {r["rule_id"] for r in listed["rules"]}
    assert {"base-eur", "black-friday-x2", "omnichannel-monthly"} <= ids
    status, off = _call(
        api,
        "POST",
        "/points/rules/black-friday-x2/deactivate",
        "/points/rules/{rule_id}/deactivate",
        {"rule_id": "black-friday-x2"},
    )
    assert (status, off["active"]) == (200, False)
    status, missing = _call(
        api,
        "POST",
        "/points/rules/nope/deactivate",
        "/points/rules/{rule_id}/deactivate",
        {"rule_id": "nope"},
    )
    assert (status, missing["error"]["code"]) == (404, "rule_not_found")


def test_a_campaign_multiplier_applies_only_inside_its_window(api: Any) -> None:
    _call(
        api,
        "POST",
        "/points/rules",
        "/points/rules",
        {},
        body={
            "rule_id": "x3",
            "kind": "multiplier",
            "multiplier": "3",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": "2026-02-01T00:00:00Z",
        },
    )
    clear_rules_cache()
    svc = PointsService()
    svc.apply(order_event("c_m1", "W-in", [("A", 1, "10")], occurred_at=datetime(2026, 1, 15, tzinfo=UTC)))
    svc.apply(order_event("c_m1", "W-out", [("A", 1, "10")], occurred_at=datetime(2026, 2, 15, tzinfo=UTC)))
    lots = {lot["order_id"]: lot["points"] for lot in svc.points("c_m1")["lots"]}
    assert lots == {"W-in": 30, "W-out": 10}


# ---------------------------------------------------------------------- concurrency
def _atomic_requests() -> None:
    """Make each emulated DynamoDB request atomic, as DynamoDB's are (devstack.moto_patches).

    Unpatched, moto evaluates conditions with no lock and backs a transaction up by deep-copying
    the table another thread may be writing. The races that matter here remain: between a
    thread's read, its decision and its conditional write.
    """
    from devstack import moto_patches

    moto_patches.install()


def test_simultaneous_redemptions_exactly_the_affordable_ones_succeed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 100 available points and 7 racers each redeeming 30 with their own key
    _available("c_race", 100)
    _atomic_requests()
    racers = 7
    barrier = threading.Barrier(racers)
    results: list[str] = []
    lock = threading.Lock()

    def redeem(n: int) -> None:
        svc = PointsService()
        barrier.wait()
        try:
            svc.redeem("c_race", 30, f"racer-{n}", "pos", None)
            outcome = "ok"
        except Unprocessable as err:
            outcome = err.code
        except Exception as err:  # noqa: BLE001 - any other failure must show in the assertion
            outcome = f"{type(err).__name__}: {err}"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly 3 succeed, the others are refused, and the balance is 10
    assert sorted(results) == ["insufficient_points"] * 4 + ["ok"] * 3
    assert PointsService().points("c_race")["available"] == 10


# ---------------------------------------------------------------------- jobs
def test_jobs_release_expire_and_flag_on_demand() -> None:
    # Given a lot due for release yesterday and another expiring within the warning window
    svc = PointsService(clock=lambda: TODAY - timedelta(days=2))
    svc.apply(
        order_event(
            "c_j1", "P-old", [("A", 1, "10")], channel=Channel.POS, occurred_at=TODAY - timedelta(days=15)
        )
    )
    svc.apply(
        order_event(
            "c_j1", "P-older", [("A", 1, "20")], channel=Channel.POS, occurred_at=TODAY - timedelta(days=335)
        )
    )
    # When the scheduled functions run (an EventBridge scheduled event)
    scheduled = load_event("schedule/points_job.json")
    job = LambdaContext(remaining_ms=300_000)  # the jobs' Timeout in the template: time to finish
    released = load_function("release_pending_points").handler(scheduled, job)
    expired = load_function("expire_points").handler(scheduled, job)
    # Then the first lot is available, and the customer is flagged about the 20 points expiring soon
    assert released["points"] == 10
    assert expired["flagged"] == 0 or expired["flagged"] == 1
    view = PointsService().points("c_j1")
    assert view["available"] == 30
    flagged = [i for i in Table().query_all("CUST#c_j1", sk_prefix="PTS#EXPIRING#")]
    assert [(i["entity"], i["points"]) for i in flagged] == [("points_expiring", 20)]
    tiers = load_function("review_tiers").handler(scheduled, LambdaContext())
    assert tiers["complete"] is True


def test_concurrent_deliveries_of_orders_and_duplicates_credit_each_order_once() -> None:
    # Given 4 orders of one customer, each delivered twice, by 8 concurrent consumers
    _atomic_requests()
    PointsService().rules()
    orders = [
        order_event("c_conc", f"W-{n}", [("A", 1, str(10 * (n + 1)))], occurred_at=TODAY) for n in range(4)
    ]
    deliveries = orders + orders
    outcomes = race(len(deliveries), lambda i: PointsService().apply(deliveries[i]))
    # Then every order earned exactly once
    assert outcomes.count("earned") == 4
    assert len(outcomes) == 8
    assert PointsService().points("c_conc")["pending"] == 10 + 20 + 30 + 40


def test_sample_api_events_are_answered(api: Any, sample_issuer: str) -> None:
    # Given the sample events for `sam local invoke -e` and a customer with points
    cid = "c_6f1c3c1e2f4b4a599a570d7f8f0b6a11"
    Table().put({"pk": f"CUST#{cid}", "sk": "PROFILE", "entity": "profile", "customer_id": cid})
    _available(cid, 100)
    expected = {
        "points_get.json": 200,
        "points_ledger.json": 200,
        "points_redeem.json": 201,
        "points_cancel_redemption.json": 404,
        "points_rules_list.json": 200,
        "points_rules_create.json": 201,
        "points_rules_deactivate.json": 200,
    }
    for name, status in expected.items():
        resp = api.handler(load_event(f"api/{name}"), LambdaContext())
        assert resp["statusCode"] == status, (name, resp["body"])
