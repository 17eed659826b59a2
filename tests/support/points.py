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
