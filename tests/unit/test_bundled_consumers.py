"""Identity and stock take bundles (issue 16, ``bnd``): every event of a bundle applied once, in
order; a redelivered bundle changes nothing; a failing event fails its record, not the others'
effect; bundles, lone events and other producers' messages mixed in one queue batch."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import Resolver as Stack
from loyalty.errors import TransientError
from loyalty.eventlog.store import to_item
from loyalty.identity.resolve import Resolver
from loyalty.models.events import ChannelEvent
from loyalty.routing.router import BUNDLE_TYPE, RoutedBundle, RoutedEvent
from loyalty.stock.service import StockService
from loyalty.stock.store import StockStore
from tests.conftest import drain
from tests.support.identity import attributed_to, attributions, event
from tests.support.lambdas import LambdaContext, load_function
from tests.support.points import sqs_record
from tests.support.stock import adjusted, at, figures, message, pos_sale, queue_event
from tests.support.streams import stream_event, stream_record

SKU, OTHER, STORE = "SKU-BND-A", "SKU-BND-B", "MAD-SOL"


def _bundle(*events: ChannelEvent) -> str:
    return RoutedBundle(events=[RoutedEvent(stage="recorded", event=e) for e in events]).model_dump_json()


def _failing_once_for(event_id: str, real: Any) -> Any:
    """``real`` (a method taking an event), raising TransientError the first time it sees ``event_id``."""
    failed: list[str] = []

    def method(self: Any, ev: ChannelEvent) -> Any:
        if ev.event_id == event_id and not failed:
            failed.append(ev.event_id)
            raise TransientError("throttled")
        return real(self, ev)

    return method


# -- identity ------------------------------------------------------------------------------------
def test_identity_resolves_every_event_of_a_bundle_once_and_a_redelivery_changes_nothing(
    stack: Stack, lambda_context: LambdaContext
) -> None:
    # Given a bundle: a person's first event, the same person with a new phone, someone else
    first = event(("email", "bnd-ana@mail.test"))
    second = event(("email", "bnd-ana@mail.test"), ("phone", "612340001"), minutes=1)
    other = event(("email", "bnd-bo@mail.test"), minutes=2)
    bundle = _bundle(first, second, other)
    fn = load_function("resolve_identity")
    # When it is delivered, then delivered again whole
    for index in range(2):
        assert fn.handler({"Records": [sqs_record(bundle, BUNDLE_TYPE, index)]}, lambda_context) == {
            "batchItemFailures": []
        }
    # Then each event was attributed exactly once, in order: the second to the first's customer
    assert attributed_to(first.event_id) == attributed_to(second.event_id)
    assert attributed_to(other.event_id) != attributed_to(first.event_id)


def test_identity_one_failing_event_fails_its_record_but_not_the_others(
    stack: Stack, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bundle whose middle event meets a throttle once
    events = [event(("email", f"bnd-{i}@mail.test"), minutes=i) for i in range(3)]
    monkeypatch.setattr(Resolver, "resolve", _failing_once_for(events[1].event_id, Resolver.resolve))
    bundle = _bundle(*events)
    lone = event(("email", "bnd-next@mail.test"), minutes=5)
    fn = load_function("resolve_identity")
    # When it is delivered, next to a lone event: its record fails, the events before and after
    # the failing one are resolved, and so is the lone event
    records = [
        sqs_record(bundle, BUNDLE_TYPE, 0),
        sqs_record(RoutedEvent(stage="recorded", event=lone).model_dump_json(), lone.type.value, 1),
    ]
    result = fn.handler({"Records": records}, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert attributions(events[1].event_id) == []
    attributed_to(lone.event_id)
    resolved = {e.event_id: attributed_to(e.event_id) for e in (events[0], events[2])}
    # And the redelivery resolves the one left, and the others stay attributed once
    assert fn.handler({"Records": [sqs_record(bundle, BUNDLE_TYPE, 1)]}, lambda_context) == {
        "batchItemFailures": []
    }
    assert {e.event_id: attributed_to(e.event_id) for e in (events[0], events[2])} == resolved
    attributed_to(events[1].event_id)


def test_identity_takes_bundles_lone_events_and_malformed_messages_in_one_batch(
    stack: Stack, lambda_context: LambdaContext
) -> None:
    bundled = [event(("email", f"bnd-m{i}@mail.test"), minutes=i) for i in range(2)]
    lone = event(("email", "bnd-lone@mail.test"), minutes=3)
    records = [
        sqs_record(_bundle(*bundled), BUNDLE_TYPE, 0),
        sqs_record(RoutedEvent(stage="recorded", event=lone).model_dump_json(), lone.type.value, 1),
        sqs_record("{nope", BUNDLE_TYPE, 2),
    ]
    result = load_function("resolve_identity").handler({"Records": records}, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    for ev in [*bundled, lone]:
        attributed_to(ev.event_id)


# -- stock ---------------------------------------------------------------------------------------
def test_stock_applies_a_routed_bundle_once_next_to_lone_and_other_producers_messages(
    stack: Stack, sqs: Any, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given stock of two SKUs, and a stream batch of two sales, a receipt and a lapsed hold
    consumer = load_function("apply_stock_events")
    consumer.handler(queue_event_of([message(adjusted(SKU, STORE, 10, at(-60)))]), lambda_context)
    consumer.handler(queue_event_of([message(adjusted(OTHER, STORE, 5, at(-60)))]), lambda_context)
    held = _held(stack)
    StockStore().table.delete(held["pk"], held["sk"])
    sales = [pos_sale("T-BND-1", SKU, 2, STORE, at(1)), pos_sale("T-BND-2", OTHER, 1, STORE, at(2))]
    receipt = adjusted(SKU, STORE, 4, at(3))
    records = [stream_record(to_item(e, 400), seq=i + 1) for i, e in enumerate([*sales, receipt])]
    records.append(stream_record(None, held, seq=9, ttl_delete=True))
    assert load_function("route_events").handler(stream_event(*records), lambda_context) == {
        "batchItemFailures": []
    }
    messages = drain(sqs, stack.refs["StockQueue"])
    kinds = sorted(m["MessageAttributes"]["type"]["StringValue"] for m in messages)
    assert kinds == sorted([BUNDLE_TYPE, "reservation.lapsed"])
    # and an ERP count sent as a lone event (the shape a message in flight across a deploy has)
    lone = queue_event_of([message(adjusted(SKU, STORE, 2, at(4)))])["Records"]
    prefetched: list[str] = []
    real = StockStore.prefetch_configs

    def prefetch(self: StockStore, skus: list[str]) -> None:
        prefetched.extend(skus)
        real(self, skus)

    monkeypatch.setattr(StockStore, "prefetch_configs", prefetch)
    # When the consumer gets the bundle, the lapsed hold and the lone count, all twice
    batch = queue_event(messages)
    batch["Records"] += lone
    for _ in range(2):
        assert consumer.handler(batch, lambda_context) == {"batchItemFailures": []}
    # Then the batch read the CONFIG of every SKU of the bundle (OTHER is only in its second
    # event), and each message applied once
    assert set(prefetched) == {SKU, OTHER}
    assert figures(SKU, STORE).on_hand == 10 - 2 + 4 + 2
    assert figures(OTHER, STORE).on_hand == 5 - 1
    assert figures(SKU, STORE).reserved == 0


def test_stock_one_failing_event_fails_its_record_but_not_the_others(
    stack: Stack, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given stock, and a bundle of three sales whose second meets a throttle once
    consumer = load_function("apply_stock_events")
    consumer.handler(queue_event_of([message(adjusted(SKU, STORE, 10, at(-60)))]), lambda_context)
    sales = [pos_sale(f"T-BNDF-{i}", SKU, i + 1, STORE, at(i)) for i in range(3)]
    monkeypatch.setattr(
        StockService, "apply_event", _failing_once_for(sales[1].event_id, StockService.apply_event)
    )
    bundle = _bundle(*sales)
    receipt = sqs_record(message(adjusted(OTHER, STORE, 2, at(5))), "stock.adjusted", 1)
    # When it is delivered, next to a lone receipt: its record fails, the first and the third
    # sale are taken, and the receipt is applied
    result = consumer.handler({"Records": [sqs_record(bundle, BUNDLE_TYPE, 0), receipt]}, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert figures(SKU, STORE).on_hand == 10 - 1 - 3
    assert figures(OTHER, STORE).on_hand == 2
    # And the redelivery takes the one left, the others are not taken again
    result = consumer.handler({"Records": [sqs_record(bundle, BUNDLE_TYPE, 1)]}, lambda_context)
    assert result == {"batchItemFailures": []}
    assert figures(SKU, STORE).on_hand == 10 - 1 - 2 - 3


def queue_event_of(bodies: list[str]) -> dict[str, Any]:
    """Lone routed events as the stock queue delivers them (with their ``type`` attribute)."""
    return {"Records": [sqs_record(body, "stock.adjusted", i) for i, body in enumerate(bodies)]}


def _held(stack: Stack) -> dict[str, Any]:
    from loyalty.stock.service import ReservationRequest
    from tests.support.stock import profile

    profile("c_bnd")
    item, _ = StockService().create_reservation(
        ReservationRequest(customer_id="c_bnd", sku=SKU, quantity=3, location_id=STORE), "k-bnd"
    )
    return item
