"""Daily KPIs per channel: counted once per event, cross-channel behaviours, the API."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.analytics.kpis import Kpis, counters_for
from loyalty.errors import TransientError
from loyalty.ingest.service import normalise_delivery
from loyalty.models.events import ChannelEvent
from loyalty.routing.router import RoutedEvent
from loyalty.store.table import Table
from tests.support.lambdas import LambdaContext, http_api_event, load_event, load_function, sqs_event
from tests.support.stale import stale_reads

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _event(channel: str, sample: str, **changes: Any) -> ChannelEvent:
    doc = load_event(f"webhooks/{sample}")
    doc.update(changes)
    (event,) = normalise_delivery(channel, json.dumps(doc).encode(), NOW)
    return event


def _routed(event: ChannelEvent, customer: str | None = "c_1") -> RoutedEvent:
    return RoutedEvent(stage="attributed" if customer else "recorded", customer_id=customer, event=event)


def test_counters_of_a_store_sale() -> None:
    sale = _event("pos", "pos_sale.json")
    assert counters_for(sale) == {
        "events": 1,
        "ev_order_completed": 1,
        "orders": 1,
        "rev_EUR": 12450,
        "pay_card": 1,
        "payrev_card_EUR": 12450,
    }


def test_duplicates_are_counted_once_and_derived_figures_follow(stack: Resolver) -> None:
    kpis = Kpis()
    first = _event("pos", "pos_sale.json")
    second = _event("pos", "pos_sale.json", ticket_id="T-000482", total="75.50", payment={"method": "cash"})
    for routed in [_routed(first), _routed(first), _routed(second, "c_2"), _routed(first)]:
        kpis.apply(routed)
    day = kpis.daily(first.occurred_at.date())["channels"]["pos"]
    assert day["orders"] == 2
    assert day["revenue"] == {"EUR": 200.0}
    assert day["average_ticket"] == {"EUR": 100.0}
    assert day["sales_by_payment_method"] == {
        "card": {"orders": 1, "revenue": {"EUR": 124.5}},
        "cash": {"orders": 1, "revenue": {"EUR": 75.5}},
    }
    assert day["active_customers"] == 2


_EXAMPLE = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=15))
def test_any_redelivery_order_gives_the_same_totals(stack: Resolver, order: list[int]) -> None:
    # each example gets its own day and ticket ids: the moto table is shared across examples
    n = next(_EXAMPLE)
    day = date(2030, 1, 1) + timedelta(days=n)
    at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    events = [
        _event("pos", "pos_sale.json", ticket_id=f"T-P{n}-{i}", total=f"{10 * (i + 1)}.00").model_copy(
            update={"occurred_at": at}
        )
        for i in range(5)
    ]
    kpis = Kpis()
    for index in order:
        kpis.apply(_routed(events[index], f"c_{index}"))
    seen = set(order)
    got = kpis.daily(day)["channels"]["pos"]
    assert got["orders"] == len(seen)
    assert got["revenue"] == {"EUR": sum(10 * (i + 1) for i in seen)}
    assert got["active_customers"] == len(seen)


def test_ropo_viewed_online_then_bought_in_store(stack: Resolver) -> None:
    kpis = Kpis()
    view = _event("app", "app_product_viewed.json", properties={"sku": "SKU-JACKET-M"})
    sale = _event("pos", "pos_sale.json")
    sale = sale.model_copy(update={"occurred_at": view.occurred_at + timedelta(days=3)})
    kpis.apply(_routed(view))
    kpis.apply(_routed(sale))
    assert kpis.daily(sale.occurred_at.date())["channels"]["pos"]["ropo_orders"] == 1


def test_showrooming_viewed_in_store_then_bought_online(stack: Resolver) -> None:
    kpis = Kpis()
    view = _event(
        "app", "app_product_viewed.json", properties={"sku": "SKU-SNEAKER-42", "store_id": "MAD-SOL"}
    )
    order = _event("web", "web_order_paid.json")
    order = order.model_copy(update={"occurred_at": view.occurred_at + timedelta(days=1)})
    kpis.apply(_routed(view))
    kpis.apply(_routed(order))
    web = kpis.daily(order.occurred_at.date())["channels"]["web"]
    assert (web["showrooming_orders"], web["orders"]) == (1, 1)


def test_a_view_long_before_the_purchase_is_not_ropo(stack: Resolver) -> None:
    kpis = Kpis()
    view = _event("app", "app_product_viewed.json", properties={"sku": "SKU-JACKET-M"})
    sale = _event("pos", "pos_sale.json").model_copy(
        update={"occurred_at": view.occurred_at + timedelta(days=45)}
    )
    kpis.apply(_routed(view))
    kpis.apply(_routed(sale))
    assert kpis.daily(sale.occurred_at.date())["channels"]["pos"]["ropo_orders"] == 0


def test_handler_counts_and_fails_a_poisoned_message_alone(
    stack: Resolver, lambda_context: LambdaContext
) -> None:
    handler = load_function("aggregate_kpis").handler
    sale = _routed(_event("pos", "pos_sale.json"))
    result = handler(sqs_event([sale.model_dump_json(), "nope"]), lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert Kpis().daily(sale.event.occurred_at.date())["channels"]["pos"]["orders"] == 1


def _get(path: str, day: str) -> tuple[int, dict[str, Any]]:
    api = load_function("kpis_api")
    resp = api.handler(
        http_api_event("GET", path, path_parameters={"day": day}, resource="/kpis/daily/{day}"),
        LambdaContext(),
    )
    return resp["statusCode"], json.loads(resp["body"])


def test_api_answers_the_day_and_refuses_bad_dates(stack: Resolver) -> None:
    sale = _event("pos", "pos_sale.json")
    Kpis().apply(_routed(sale))
    day = sale.occurred_at.date().isoformat()
    status, body = _get(f"/kpis/daily/{day}", day)
    assert status == 200
    assert body["channels"]["pos"]["orders"] == 1
    assert _get("/kpis/daily/2026-13-45", "2026-13-45")[1]["error"]["code"] == "invalid_date"
    assert _get("/kpis/daily/yesterday", "yesterday")[0] == 422


@pytest.mark.parametrize("sample", ["email_events.json"])
def test_events_without_a_customer_are_counted_too(stack: Resolver, sample: str) -> None:
    events = normalise_delivery("email", json.dumps(load_event(f"webhooks/{sample}")).encode(), NOW)
    for event in events:
        Kpis().apply(_routed(event, None))
    day = Kpis().daily(events[1].occurred_at.date())["channels"]["email"]
    assert day["events_by_type"]["email_opened"] == 1
    assert day["active_customers"] == 0


# ---- scale: batches, shards, ranges ----


_RUNS = itertools.count()


def _sales(n: int, day: str = "2026-11-21") -> list[RoutedEvent]:
    base = load_event("webhooks/pos_sale.json")
    out, run = [], next(_RUNS)
    for i in range(n):
        doc = {**base, "ticket_id": f"T-S{run}-{i}", "store_id": ["MAD-SOL", "BCN-DIAG"][i % 2]}
        doc["issued_at"] = f"{day}T10:{i % 60:02d}:00+00:00"
        (event,) = normalise_delivery("pos", json.dumps(doc).encode(), datetime(2026, 11, 23, tzinfo=UTC))
        out.append(_routed(event, f"c_{i % 3}"))
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 11), st.integers(1, 4)), min_size=1, max_size=12))
def test_batches_with_duplicates_count_each_event_once(stack: Resolver, plan: list[tuple[int, int]]) -> None:
    # Given 12 sales delivered in any batches, with any duplicates inside and across batches
    sales = _sales(12, day=(date(2025, 1, 1) + timedelta(days=next(_RUNS))).isoformat())
    kpis = Kpis()
    delivered: set[int] = set()
    for first, size in plan:
        batch = [sales[(first + k) % 12] for k in range(size)] + [sales[first]]
        counted = kpis.apply_batch(batch)
        # Then an event is reported counted exactly the first time it is seen
        for k, routed in enumerate(batch[:-1]):
            index = sales.index(routed)
            assert counted[k] == (index not in delivered and routed not in batch[:k])
        delivered.update((first + k) % 12 for k in range(size))
        assert counted[-1] is False
    got = kpis.daily(sales[0].event.occurred_at.date())
    # And the totals are those of the distinct events, per channel and per store
    assert got["channels"]["pos"]["orders"] == len(delivered)
    stores = got["stores"]
    assert sum(s["orders"] for s in stores.values()) == len(delivered)
    customers = {sales[i].customer_id for i in delivered}
    assert got["channels"]["pos"]["active_customers"] == len(customers)
    by_store = {
        s: {sales[i].customer_id for i in delivered if i % 2 == ["MAD-SOL", "BCN-DIAG"].index(s)}
        for s in stores
    }
    assert {s: v["active_customers"] for s, v in stores.items()} == {s: len(c) for s, c in by_store.items()}


def _deliver(batch: list[RoutedEvent]) -> int:
    """Count a batch as the queue does: a batch handed back (TransientError) is delivered again."""
    while True:
        try:
            return sum(Kpis().apply_batch(batch))
        except TransientError:
            continue


def test_concurrent_batches_count_every_event_once(stack: Resolver) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Given 40 sales delivered twice each, by four workers at the same time
    sales = _sales(40)
    batches = [sales[i : i + 10] for i in range(0, 40, 10)] * 2

    with ThreadPoolExecutor(max_workers=4) as pool:
        counted = sum(pool.map(_deliver, batches))
    # Then each is counted once
    assert counted == 40
    day = Kpis().daily(sales[0].event.occurred_at.date())
    assert day["channels"]["pos"]["orders"] == 40
    assert day["channels"]["pos"]["active_customers"] == 3


def test_range_api_days_totals_and_store_filter(stack: Resolver) -> None:
    Kpis().apply_batch(_sales(4, "2026-11-20") + _sales(2, "2026-11-22"))
    api = load_function("kpis_api")

    def get(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        result = api.handler(
            http_api_event("GET", "/kpis/daily", query=query, role="marketing"), LambdaContext()
        )
        return result["statusCode"], json.loads(result["body"])

    status, body = get({"from": "2026-11-20", "to": "2026-11-22"})
    assert status == 200
    assert [d["date"] for d in body["days"]] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert body["days"][1] == {"date": "2026-11-21", "channels": {}, "stores": {}}
    assert body["days"][0]["channels"]["pos"]["orders"] == 4
    assert body["totals"]["channels"]["pos"]["orders"] == 6
    assert body["totals"]["stores"]["MAD-SOL"]["orders"] == 3  # sales 0 and 2, then 0
    status, body = get({"from": "2026-11-20", "to": "2026-11-22", "store": "BCN-DIAG"})
    assert body["totals"] == {"channels": {}, "stores": {"BCN-DIAG": body["totals"]["stores"]["BCN-DIAG"]}}
    assert body["totals"]["stores"]["BCN-DIAG"]["orders"] == 3
    assert get({"from": "2026-01-01", "to": "2026-04-30"})[0] == 422
    assert get({"from": "2026-11-22", "to": "2026-11-20"})[0] == 422
    assert get({"from": "nope", "to": "2026-11-20"})[0] == 422
    assert get({"to": "2026-11-20"})[0] == 422


def test_one_day_item_per_customer_counts_its_events_once_under_races(stack: Resolver) -> None:
    """The customer's day item (``KPIACT#<day>``) is the marker of its events and of its places:
    duplicates, any order and concurrent batches still count each event and place once."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from loyalty.store.table import Table

    # Given 30 sales of 4 customers in two stores, and 10 web orders of the same customers
    sales = _sales(30, day="2026-10-05")
    web = [
        _routed(
            _event("web", "web_order_paid.json", id=f"wh_race_{i}").model_copy(
                update={"occurred_at": sales[0].event.occurred_at}
            ),
            f"c_{i % 4}",
        )
        for i in range(10)
    ]
    for i, routed in enumerate(sales):
        sales[i] = routed.model_copy(update={"customer_id": f"c_{i % 4}"})
    events = sales + web
    # each delivered three times, shuffled, in batches of 1 to 12, by four workers at once
    deliveries = events * 3
    random.Random(16).shuffle(deliveries)
    batches, rng, at = [], random.Random(5), 0
    while at < len(deliveries):
        size = rng.randint(1, 12)
        batches.append(deliveries[at : at + size])
        at += size

    with ThreadPoolExecutor(max_workers=4) as pool:
        counted = sum(pool.map(_deliver, batches))
    # Then every event is counted once, and each customer is active once per place
    assert counted == len(events)
    day = Kpis().daily(sales[0].event.occurred_at.date())
    assert day["channels"]["pos"]["orders"] == 30
    assert day["channels"]["pos"]["active_customers"] == 4
    assert day["channels"]["web"]["events"] == 10
    assert day["channels"]["web"]["active_customers"] == 4
    assert {s: v["active_customers"] for s, v in day["stores"].items()} == {"MAD-SOL": 2, "BCN-DIAG": 2}
    # And each customer has ONE day item holding its events and its 3 places
    for customer in ("c_0", "c_1", "c_2", "c_3"):
        items = list(Table().query_all(f"CUST#{customer}", sk_prefix="KPIACT#", consistent=True))
        assert len(items) == 1
        assert len(items[0]["events"]) == sum(e.customer_id == customer for e in events)
        assert len(items[0]["places"]) == 3


def _day_item_key(routed: RoutedEvent) -> tuple[str, str]:
    return f"CUST#{routed.customer_id}", f"KPIACT#{routed.event.occurred_at.date().isoformat()}"


@pytest.mark.parametrize(("replica", "retries"), [("missing", 2), ("before the second event", 1)])
def test_a_stale_day_item_is_refused_by_its_put_and_read_again(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch, replica: str, retries: int
) -> None:
    # Given a customer's day item read eventually consistently, from a replica that has not seen it
    # yet, or still holds it as it was before the customer's second event was counted
    first, second = (_routed(_event("pos", "pos_sale.json", ticket_id=f"T-{replica}-{i}")) for i in range(2))
    kpis = Kpis()
    assert kpis.apply(first)
    key = _day_item_key(first)
    stale_item = Table().get(*key) if replica != "missing" else None
    if stale_item is not None:
        assert kpis.apply(second)
    with stale_reads(monkeypatch, {key: stale_item}) as stale:
        # When the second event is counted (again) and the first redelivered
        assert kpis.apply(second) is (stale_item is None)
        assert not kpis.apply(first)
    # Then the put at the version read was refused and the retry read the item consistently: each
    # event counted once, the customer active once (a put over the item would lose a tag)
    assert stale.consistent[key] == retries
    day = kpis.daily(first.event.occurred_at.date())["channels"]["pos"]
    assert day["orders"] == 2
    assert day["active_customers"] == 1


def test_a_view_of_the_same_batch_counts_whatever_the_replica_says(
    stack: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an app view and, in the same batch, the store sale of that SKU (ROPO)
    view = _event("app", "app_product_viewed.json", properties={"sku": "SKU-JACKET-M"})
    sale = _event("pos", "pos_sale.json", ticket_id="T-BATCH-ROPO")
    sale = sale.model_copy(update={"occurred_at": view.occurred_at + timedelta(minutes=5)})
    key = ("CUST#c_1", "KPIVIEW#SKU-JACKET-M")
    # When a replica has not seen the view's item yet
    with stale_reads(monkeypatch, {key: None}):
        Kpis().apply_batch([_routed(view), _routed(sale)])
    # Then the sale is still ROPO: the batch's own views are not read back from the table
    assert Kpis().daily(sale.occurred_at.date())["channels"]["pos"]["ropo_orders"] == 1
