"""Builders of points-queue messages (routed order events and merges) for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty.models import events as ev
from loyalty.points.service import PointsService, clear_rules_cache
from loyalty.routing.router import RoutedEvent
from loyalty.settings import get_settings


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def points_service(clock: Clock) -> Iterator[PointsService]:
    """A fixture's service on the emulated table, lots expiring after 30 days (the minimum).

    Each emulated request is atomic, and a transaction costs O(items touched), as in DynamoDB
    (``devstack.moto_patches``); the rules cache is cleared before and after.
    """
    from devstack import moto_patches

    moto_patches.install()
    clear_rules_cache()
    # expiry after 30 days (the minimum) so a property test sees lots expire within a few steps
    settings_ = get_settings().model_copy(update={"points_expiry_days": 30})
    yield PointsService(clock=clock, settings=settings_)
    clear_rules_cache()


def order_event(
    customer_id: str,
    order_id: str,
    lines: list[tuple[str, int, str]],
    *,
    channel: ev.Channel = ev.Channel.WEB,
    occurred_at: datetime,
    currency: str = "EUR",
    event_id: str | None = None,
    category: str | None = None,
) -> RoutedEvent:
    """A completed order; ``lines`` are (sku, quantity, unit price) with line ids 1, 2, ..."""
    order_lines = [
        ev.OrderLine(line_id=str(i), sku=sku, quantity=qty, unit_price=Decimal(price), category=category)
        for i, (sku, qty, price) in enumerate(lines, start=1)
    ]
    total = sum((line.total for line in order_lines), Decimal(0))
    return RoutedEvent(
        stage="attributed",
        customer_id=customer_id,
        event=ev.ChannelEvent(
            event_id=event_id or f"ev-{order_id}",
            channel=channel,
            type=ev.EventType.ORDER_COMPLETED,
            occurred_at=occurred_at,
            source_event_id=f"src-{order_id}",
            payload=ev.OrderPayload(
                order_id=order_id, currency=currency, total=total, lines=order_lines, location_id="WH-1"
            ),
        ),
    )


def refund_event(
    customer_id: str,
    order_id: str,
    refund_id: str,
    lines: list[tuple[str, str, int]],
    *,
    channel: ev.Channel = ev.Channel.WEB,
    occurred_at: datetime,
    amount: str = "0",
) -> RoutedEvent:
    """A refund of ``lines`` = (line id, sku, quantity) of an order (or of ``amount`` with no lines)."""
    return RoutedEvent(
        stage="attributed",
        customer_id=customer_id,
        event=ev.ChannelEvent(
            event_id=f"ev-{order_id}-{refund_id}",
            channel=channel,
            type=ev.EventType.ORDER_REFUNDED,
            occurred_at=occurred_at,
            source_event_id=f"src-{refund_id}",
            payload=ev.RefundPayload(
                order_id=order_id,
                refund_id=refund_id,
                currency="EUR",
                amount=Decimal(amount),
                lines=[ev.RefundLine(line_id=i, sku=s, quantity=q, amount=Decimal(0)) for i, s, q in lines],
            ),
        ),
    )


def cancel_event(customer_id: str, order_id: str, *, occurred_at: datetime) -> RoutedEvent:
    return RoutedEvent(
        stage="attributed",
        customer_id=customer_id,
        event=ev.ChannelEvent(
            event_id=f"ev-{order_id}-cancel",
            channel=ev.Channel.WEB,
            type=ev.EventType.ORDER_CANCELLED,
            occurred_at=occurred_at,
            source_event_id=f"src-{order_id}-cancel",
            payload=ev.CancelPayload(order_id=order_id),
        ),
    )


def sqs_record(body: str, type_: str, index: int = 0) -> dict[str, Any]:
    """An SQS record with the ``type`` message attribute the router sets."""
    return {
        "messageId": f"m{index}",
        "receiptHandle": f"rh{index}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {"type": {"stringValue": type_, "dataType": "String"}},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:points",
        "awsRegion": "eu-west-1",
    }


class StaleReads:
    """A double of DynamoDB's eventually consistent reads: some items of one customer answer as
    they were when the double was made (``stale``: their sort key prefixes); consistent reads,
    and every other item, answer as they are now."""

    def __init__(self, monkeypatch: Any, pk: str, stale: tuple[str, ...] = ("",)) -> None:
        from loyalty.store.table import Table

        self.pk, self.stale = pk, stale
        self.snapshot: dict[str, Any] = {}
        self.freeze()
        self.stale_reads = 0
        real_get, real_query, real_batch = Table.get, Table.query, Table.batch_get

        def get(table: Table, pk: str, sk: str, *, consistent: bool = True) -> Any:
            if consistent or not self._is_stale(pk, sk):
                return real_get(table, pk, sk, consistent=consistent)
            self.stale_reads += 1
            return self.snapshot.get(sk)

        def query(table: Table, pk: str, **kw: Any) -> Any:
            items, last = real_query(table, pk, **kw)
            if kw.get("consistent") or kw.get("index") or pk != self.pk:
                return items, last
            self.stale_reads += 1
            low, high = kw.get("sk_between") or (
                kw.get("sk_prefix") or "",
                (kw.get("sk_prefix") or "") + "\uffff",
            )
            old = [i for sk, i in self.snapshot.items() if low <= sk <= high and self._is_stale(pk, sk)]
            fresh = [i for i in items if not self._is_stale(pk, i["sk"])]
            return sorted(fresh + old, key=lambda i: i["sk"]), last

        def batch_get(table: Table, keys: Any, *, consistent: bool = True) -> Any:
            items = real_batch(table, keys, consistent=consistent)
            if consistent:
                return items
            self.stale_reads += 1
            fresh = [i for i in items if not self._is_stale(i["pk"], i["sk"])]
            old = [self.snapshot[sk] for pk, sk in keys if self._is_stale(pk, sk) and sk in self.snapshot]
            return fresh + old

        monkeypatch.setattr(Table, "get", get)
        monkeypatch.setattr(Table, "query", query)
        monkeypatch.setattr(Table, "batch_get", batch_get)

    def freeze(self) -> None:
        """From now on, stale items answer as they are at this instant."""
        from loyalty.store.table import Table

        self.snapshot = {i["sk"]: i for i in Table().query_all(self.pk, consistent=True)}

    def _is_stale(self, pk: str, sk: str) -> bool:
        return pk == self.pk and sk.startswith(self.stale)
