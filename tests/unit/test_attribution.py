"""Attribution by the timeline entry's INSERT (issue 16, ``attr``): the event item is not rewritten,
the router turns the entry into exactly the messages the event's MODIFY became, and an event is
attributed once whatever the redeliveries, races, merges, unmerges and erasures."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver as StackResolver
from loyalty import aws
from loyalty.customers import ATTRIBUTED, redirect_key
from loyalty.errors import Conflict, NotFound
from loyalty.eventlog.store import EventLog, event_key, to_item
from loyalty.identity.merge import MergeEngine
from loyalty.identity.resolve import Resolver
from loyalty.identity.service import CustomerService
from loyalty.identity.store import IdentityStore, timeline_key
from loyalty.ingest.service import normalise_delivery
from loyalty.models.events import ChannelEvent
from loyalty.notify.catalogue import match
from loyalty.settings import get_settings
from loyalty.store.table import Table, deserialize, serialize
from tests.conftest import drain
from tests.support.identity import BASE, attributed_to, attributions, event, ident
from tests.support.lambdas import LambdaContext, load_event, load_function
from tests.support.races import race
from tests.support.stale import stale_reads
from tests.support.streams import stream_event, stream_record

ROUTED_QUEUES = ("PointsQueue", "AnalyticsQueue", "StockQueue", "IdentityQueue")


def order(card: str, minutes: int = 0, sample: str = "pos_sale.json", channel: str = "pos") -> ChannelEvent:
    """A sample order of the loyalty card ``card``, recorded in the log (a new event id each time)."""
    body = json.dumps(load_event(f"webhooks/{sample}")).encode()
    (sale,) = [e for e in normalise_delivery(channel, body, BASE) if e.type.value.startswith("order.")][:1]
    ev = sale.model_copy(
        update={
            "event_id": f"ord-{card}-{minutes}",
            "identifiers": [ident("loyalty_card", card)],
            "occurred_at": sale.occurred_at.replace(year=2026, month=11, day=1, minute=minutes % 60),
        }
    )
    assert EventLog().record(ev)
    return ev


def attributing_entry(sale: ChannelEvent, cid: str) -> dict[str, Any]:
    """The timeline entry that attributes ``sale`` to ``cid`` (as identity writes it)."""
    return {
        "pk": f"CUST#{cid}",
        "sk": f"TL#{sale.occurred_at.isoformat()}#{sale.event_id}",
        "entity": "timeline",
        "stage": ATTRIBUTED,
        "event_id": sale.event_id,
        "customer_id": cid,
    }


def entries_of(event_id: str) -> list[dict[str, Any]]:
    """The attributing timeline entries of an event (a scan: tests only)."""
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=Table().name)
    items = [deserialize(i) for page in pages for i in page["Items"]]
    return [i for i in items if i.get("event_id") == event_id and i.get("stage") == ATTRIBUTED]


def attributed_order(card: str) -> tuple[ChannelEvent, str]:
    """A new customer's order, resolved (attributed), and the identity queue left empty."""
    sale = order(card)
    cid = Resolver().resolve(sale).customer_id
    assert cid
    drain(aws.client("sqs"), get_settings().identity_queue_url)
    return sale, cid


def queued(stack: StackResolver, sqs: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for logical in ROUTED_QUEUES:
        bodies = [json.loads(m["Body"]) for m in drain(sqs, stack.refs[logical])]
        out[logical] = sorted(bodies, key=json.dumps)
    return out


@pytest.fixture
def router(stack: StackResolver) -> Any:
    return load_function("route_events")


def test_an_order_is_attributed_by_its_timeline_entry_not_by_rewriting_the_event(
    stack: StackResolver,
) -> None:
    # Given a recorded store sale of a new customer
    sale = order("7700000001")
    logged = Table().get(*event_key(sale.event_id))
    # When identity resolves it
    result = Resolver().resolve(sale)
    # Then it is attributed by ONE timeline entry of its customer, and the event item is as recorded
    assert result.attributed
    assert result.customer_id
    assert attributed_to(sale.event_id) == result.customer_id
    (entry,) = entries_of(sale.event_id)
    assert (entry["pk"], entry["sk"]) == timeline_key(result.customer_id, entry["occurred_at"], sale.event_id)
    assert Table().get(*event_key(sale.event_id)) == logged
    # and the entry stays under 1 KB (one write unit)
    assert len(json.dumps(serialize(entry))) < 1024


def test_the_router_turns_the_entry_into_the_messages_the_modify_became(
    router: Any, stack: StackResolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given an order attributed by its timeline entry
    sale, cid = attributed_order("7700000002")
    (entry,) = entries_of(sale.event_id)
    # When the router gets the entry's INSERT
    assert router.handler(stream_event(stream_record(entry)), lambda_context) == {"batchItemFailures": []}
    by_entry = queued(stack, sqs)
    # and, separately, the MODIFY the event item carried before the change
    recorded = to_item(sale, 400)
    modify = stream_record({**recorded, "customer_id": cid}, recorded)
    assert router.handler(stream_event(modify), lambda_context) == {"batchItemFailures": []}
    by_modify = queued(stack, sqs)
    # Then both sent exactly the same messages, to the same queues (points and analytics)
    assert by_entry == by_modify
    assert [m["customer_id"] for m in by_entry["PointsQueue"]] == [cid]
    assert len(by_entry["AnalyticsQueue"]) == 1
    assert by_entry["StockQueue"] == by_entry["IdentityQueue"] == []


def test_an_entry_naming_an_absorbed_customer_routes_its_survivor(
    router: Any, stack: StackResolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given an entry written for a customer that a merge absorbed before the entry was routed
    sale = order("7700000003")
    entry = attributing_entry(sale, "c_absorbed")
    Table().put({"pk": "CUST#c_absorbed", "sk": "REDIRECT", "entity": "redirect", "survivor_id": "c_middle"})
    Table().put({"pk": "CUST#c_middle", "sk": "REDIRECT", "entity": "redirect", "survivor_id": "c_live"})
    # When it is routed
    assert router.handler(stream_event(stream_record(entry)), lambda_context) == {"batchItemFailures": []}
    # Then the message names the live customer (consumers dedupe the event in its partition)
    assert [m["customer_id"] for m in queued(stack, sqs)["PointsQueue"]] == ["c_live"]


def test_legacy_modifies_still_route_once_and_their_entries_route_nothing(
    router: Any, stack: StackResolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given an event attributed before the change (its item carries customer_id; its MODIFY in flight)
    sale = order("7700000004")
    assert EventLog().attribute(sale.event_id, "c_legacy")
    recorded = to_item(sale, 400)
    modify = stream_record({**recorded, "customer_id": "c_legacy"}, recorded, seq=1)
    # and an attributing entry of the same event (a redelivery resolved by the new code)
    entry = {
        "pk": "CUST#c_legacy",
        "sk": f"TL#x#{sale.event_id}",
        "entity": "timeline",
        "stage": ATTRIBUTED,
        "event_id": sale.event_id,
        "customer_id": "c_legacy",
    }
    # When the router gets both
    result = router.handler(stream_event(modify, stream_record(entry, seq=2)), lambda_context)
    # Then the MODIFY routes once; the entry routes nothing
    assert result == {"batchItemFailures": []}
    got = queued(stack, sqs)
    assert [m["customer_id"] for m in got["PointsQueue"]] == ["c_legacy"]
    assert len(got["AnalyticsQueue"]) == 1


def test_an_entry_whose_event_is_not_in_the_log_is_retried(
    router: Any, stack: StackResolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    entry = {"pk": "CUST#c_1", "sk": "TL#x#nope", "entity": "timeline", "stage": ATTRIBUTED}
    entry |= {"event_id": "nope", "customer_id": "c_1"}
    record = stream_record(entry, seq=7)
    result = router.handler(stream_event(record), lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    assert queued(stack, sqs)["PointsQueue"] == []


def test_racing_duplicates_and_redeliveries_attribute_once(stack: StackResolver) -> None:
    # Given a new customer's order delivered to eight workers at once, then twice more
    sale = order("7700000005")
    results = race(8, lambda _: Resolver().resolve(sale))
    results += [Resolver().resolve(sale) for _ in range(2)]
    # Then exactly one attribution, one customer, one attributing entry
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sum(r.attributed for r in results) == 1
    assert len({r.customer_id for r in results}) == 1
    assert attributed_to(sale.event_id) == results[0].customer_id
    assert len(entries_of(sale.event_id)) == 1


def _customers_merged_by(card: str, email: str) -> tuple[str, str, ChannelEvent]:
    """The customer of ``email`` (created first: the survivor), the card's customer created by an
    order (attributed to it), then both merged by an event that carries the two."""
    older = Resolver().resolve(event(("email", email), minutes=0)).customer_id
    sale = order(card, minutes=1)
    newer = Resolver().resolve(sale).customer_id
    assert older
    assert newer
    assert older != newer
    Resolver().resolve(event(("email", email), ("loyalty_card", card), minutes=2))
    assert IdentityStore().resolve(newer) == older
    return older, newer, sale


def test_a_redelivery_after_a_merge_does_not_attribute_again(stack: StackResolver) -> None:
    # Given an order attributed to its card's customer, who is then absorbed by the email's customer
    survivor, absorbed, sale = _customers_merged_by("7700000006", "m@x.es")
    # When the order is redelivered and resolves to the survivor
    again = Resolver().resolve(sale)
    # Then it is not attributed a second time: the absorbed customer's entry was found
    assert again.customer_id == survivor
    assert not again.attributed
    assert attributions(sale.event_id) == [absorbed]


def test_a_redelivery_after_an_unmerge_does_not_attribute_again(stack: StackResolver) -> None:
    # Given two customers merged, and an order of the absorbed one's card attributed to the survivor
    survivor, absorbed, _ = _customers_merged_by("7700000007", "u@x.es")
    sale = order("7700000007", minutes=10)
    first = Resolver().resolve(sale)
    assert (first.customer_id, first.attributed) == (survivor, True)
    assert EventLog().get(sale.event_id)["attributed_to"] == survivor  # the guard
    # When the merge is undone (the card goes back) and the order is redelivered
    MergeEngine().unmerge(survivor)
    again = Resolver().resolve(sale)
    # Then it resolves to the card's own customer again, and is not attributed a second time
    assert again.customer_id == absorbed
    assert not again.attributed
    assert attributions(sale.event_id) == [survivor]


def test_the_claim_is_the_guard_of_customers_with_a_merge_history(stack: StackResolver) -> None:
    sale = order("7700000008")
    log = EventLog()
    assert log.claim(sale.event_id, "c_a")
    assert log.claim(sale.event_id, "c_a")  # the same customer's redelivery
    assert not log.claim(sale.event_id, "c_b")  # the other side of an unmerge
    assert not log.attribute(sale.event_id, "c_b")
    legacy = order("7700000009")
    assert log.attribute(legacy.event_id, "c_old")
    assert not log.claim(legacy.event_id, "c_old")  # attributed by its MODIFY before the change
    assert not log.claim("missing", "c_a")


def test_racing_redeliveries_across_an_unmerge_attribute_once(stack: StackResolver) -> None:
    # Given an order of the absorbed customer's card, and the merge undone while it is delivered
    survivor, absorbed, _ = _customers_merged_by("7700000010", "r@x.es")
    sale = order("7700000010", minutes=10)
    engine = MergeEngine()
    # When workers resolve it while another undoes the merge
    results = race(6, lambda i: engine.unmerge(survivor) if i == 0 else Resolver().resolve(sale))
    results += [Resolver().resolve(sale)]
    # Then it is attributed exactly once, to one of the two
    assert [r for r in results if isinstance(r, BaseException)] == []
    (who,) = attributions(sale.event_id)
    assert who in {survivor, absorbed}


def test_a_stale_delivery_of_an_erased_customers_order_is_not_routed_again(
    router: Any, stack: StackResolver, sqs: Any, lambda_context: LambdaContext
) -> None:
    # Given an order attributed to a customer who is then erased (the event is anonymised)
    sale, cid = attributed_order("7700000011")
    CustomerService().erase(cid)
    # When the old message (with the identifiers) is redelivered: a customer is created, as always
    again = Resolver().resolve(sale)
    assert again.customer_id not in (None, cid)
    # Then its entry is not routed: the erased person's order earns and counts nothing again
    (entry,) = entries_of(sale.event_id)
    assert router.handler(stream_event(stream_record(entry)), lambda_context) == {"batchItemFailures": []}
    assert queued(stack, sqs) == {q: [] for q in ROUTED_QUEUES}


def test_profile_events_are_still_attributed_by_their_modify(stack: StackResolver) -> None:
    update = event(("email", "p@x.es"), profile={"first_name": "Ana"})
    cid = Resolver().resolve(update).customer_id
    assert EventLog().get(update.event_id)["customer_id"] == cid
    assert attributed_to(update.event_id) == cid
    assert entries_of(update.event_id) == []


def test_the_fan_out_sends_the_order_status_of_an_entry_as_of_a_modify(
    stack: StackResolver,
) -> None:
    # Given a web order attributed by its timeline entry
    body = json.dumps(load_event("webhooks/web_order_paid.json")).encode()
    (placed,) = [e for e in normalise_delivery("web", body, BASE) if e.type.value.startswith("order.")]
    assert EventLog().record(placed)
    cid = Resolver().resolve(placed).customer_id
    (entry,) = entries_of(placed.event_id)
    # When the fan-out matches the entry's INSERT and, separately, the MODIFY it replaced
    recorded = to_item(placed, 400)
    by_entry = match(entry, None)
    by_modify = match({**recorded, "customer_id": cid}, recorded)
    # Then both are the same order_status intent with the same data
    assert [(t.rule.intent, t.customer_id, t.data) for t in by_entry] == [
        (t.rule.intent, t.customer_id, t.data) for t in by_modify
    ]
    assert [t.rule.intent for t in by_entry] == ["order_status"]


_RUN = itertools.count()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.sampled_from(["deliver", "link", "unmerge"]), min_size=1, max_size=7))
def test_any_order_of_deliveries_merges_and_unmerges_attributes_once(
    stack: StackResolver, steps: list[str]
) -> None:
    # Given an order of a card and an older customer of an email (fresh values per example)
    run = next(_RUN)
    card, email = f"88{run:08d}", f"h{run}@x.es"
    older = Resolver().resolve(event(("email", email), minutes=-10)).customer_id
    assert older
    sale = order(card, minutes=run % 50)
    link = event(("email", email), ("loyalty_card", card), minutes=run % 50 + 1)
    # When the order is delivered (again and again), the two are linked, and the merge is undone,
    # in any order
    for step in [*steps, "deliver"]:
        if step == "deliver":
            Resolver().resolve(sale)
        elif step == "link":
            Resolver().resolve(link)
        else:
            with contextlib.suppress(Conflict, NotFound):
                MergeEngine().unmerge(IdentityStore().resolve(older))
    # Then the order is attributed exactly once
    assert len(attributions(sale.event_id)) == 1


@pytest.mark.parametrize("missed", ["event", "redirect"])
def test_what_a_replica_has_not_seen_yet_is_read_consistently(
    router: Any,
    stack: StackResolver,
    sqs: Any,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    missed: str,
) -> None:
    # Given an entry of a customer a merge absorbed moments ago, and a replica that has not seen
    # the event item (read eventually consistent) or the REDIRECT (must be read consistently) yet
    sale = order(f"77000000{len(missed)}2")
    entry = attributing_entry(sale, "c_just_absorbed")
    redirect = redirect_key("c_just_absorbed")
    Table().put({"pk": redirect[0], "sk": redirect[1], "survivor_id": "c_won"})
    key = event_key(sale.event_id) if missed == "event" else redirect
    with stale_reads(monkeypatch, {key: None}) as stale:
        # When the router gets the entry's INSERT
        result = router.handler(stream_event(stream_record(entry)), lambda_context)
    # Then it is routed once, to the survivor, from a consistent read of what the replica missed
    assert result == {"batchItemFailures": []}
    assert stale.consistent[key] == 1
    got = queued(stack, sqs)
    assert [m["customer_id"] for m in got["PointsQueue"]] == ["c_won"]
    assert len(got["AnalyticsQueue"]) == 1
