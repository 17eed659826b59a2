"""Our own senders (tills, app, ERP, generic web / chat / email shapes) on Standard Webhooks.

Each channel keeps its own payload (``loyalty.ingest.channels.<channel>``); the event ids come from
the payload's own ids (ticket, order, message), so a redelivery under a new ``webhook-id`` is
still recorded once.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from loyalty.ingest import signature
from loyalty.ingest.channels import normaliser
from loyalty.ingest.providers import Connector, Delivery
from loyalty.models.events import ChannelEvent


def _verify(delivery: Delivery, now: float, tolerance_s: int) -> None:
    signature.verify(
        delivery.headers, delivery.body, delivery.secrets.secrets, now=now, tolerance_s=tolerance_s
    )


@cache
def connector_for(channel: str) -> Connector:
    normalise_channel = normaliser(channel)
    if normalise_channel is None:  # pragma: no cover - callers pass a known channel
        raise ValueError(f"unknown channel {channel!r}")

    def normalise(document: Any, delivery: Delivery) -> list[ChannelEvent]:
        return normalise_channel(document, delivery.received_at)

    return Connector(verify=_verify, normalise=normalise)
