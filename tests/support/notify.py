"""Items other capabilities write (per docs/contracts), built for notification tests."""

from __future__ import annotations

import json
from typing import Any

from loyalty.store.table import Table

DEFAULT_CONTACTS = {"email": "ana@example.com", "phone": "+34600000001", "device_id": "dev-ana-1"}


def consents(**granted: bool) -> dict[str, dict[str, Any]]:
    return {
        channel: {"granted": value, "source": "test", "at": "2026-01-01T00:00:00+00:00"}
        for channel, value in granted.items()
    }


def seed_customer(
    table: Table,
    customer_id: str,
    *,
    granted: dict[str, bool] | None = None,
    preferred: str | None = "email",
    timezone: str = "Europe/Madrid",
    locale: str = "es",
    contacts: dict[str, str] | None = None,
    status: str = "active",
    first_name: str = "Ana",
) -> dict[str, Any]:
    """A golden profile with consents, plus its contact identifiers."""
    profile = {
        "pk": f"CUST#{customer_id}",
        "sk": "PROFILE",
        "entity": "profile",
        "customer_id": customer_id,
        "created_at": "2026-01-01T00:00:00+00:00",
        "first_name": first_name,
        "last_name": "García",
        "locale": locale,
        "timezone": timezone,
        "preferred_channel": preferred,
        "consents": consents(**(granted if granted is not None else {"email": True, "sms": True})),
        "status": status,
        "version": 1,
    }
    table.put(profile)
    for kind, value in (contacts if contacts is not None else DEFAULT_CONTACTS).items():
        table.put(
            {
                "pk": f"CUST#{customer_id}",
                "sk": f"ID#{kind}#{value}",
                "entity": "identity",
                "type": kind,
                "value": value,
            }
        )
    return profile


def lot(customer_id: str, order_id: str, status: str, points: int = 120) -> dict[str, Any]:
    return {
        "pk": f"CUST#{customer_id}",
        "sk": f"PTS#LOT#{order_id}",
        "entity": "points_lot",
        "customer_id": customer_id,
        "order_id": order_id,
        "points": points,
        "status": status,
        "channel": "pos",
    }


def tier_change(customer_id: str, from_tier: str = "bronze", to_tier: str = "silver") -> dict[str, Any]:
    return {
        "pk": f"CUST#{customer_id}",
        "sk": "PTS#TIER#2026-11-20T10:00:00+00:00",
        "entity": "tier_change",
        "customer_id": customer_id,
        "from_tier": from_tier,
        "to_tier": to_tier,
    }


def points_expiring(customer_id: str, run_day: str = "2026-11-20", points: int = 300) -> dict[str, Any]:
    return {
        "pk": f"CUST#{customer_id}",
        "sk": f"PTS#EXPIRING#{run_day}",
        "entity": "points_expiring",
        "customer_id": customer_id,
        "points": points,
        "expires_on": "2026-12-20",
    }


def reservation(
    customer_id: str, rid: str = "r_1", status: str = "ready", hold_until: str = "2026-11-25T18:00:00.000000Z"
) -> dict[str, Any]:
    return {
        "pk": f"RES#{rid}",
        "sk": "RES",
        "entity": "reservation",
        "reservation_id": rid,
        "customer_id": customer_id,
        "sku": "SKU-1",
        "location_id": "STORE-01",
        "quantity": 1,
        "status": status,
        "hold_until": hold_until,
        "updated_at": "2026-11-23T10:00:00.000000Z",
    }


def back_in_stock(
    sku: str = "SKU-1", location_id: str = "STORE-01", at: str = "2026-11-23T10:00:00Z"
) -> dict[str, Any]:
    return {
        "pk": f"SKU#{sku}",
        "sk": f"SIG#{location_id}#{at}#back_in_stock",
        "entity": "stock_signal",
        "signal": "back_in_stock",
        "sku": sku,
        "location_id": location_id,
    }


def alert(customer_id: str, sku: str = "SKU-1", location_id: str = "STORE-01") -> dict[str, Any]:
    return {
        "pk": f"SKU#{sku}",
        "sk": f"ALERT#{location_id}#{customer_id}",
        "entity": "stock_alert",
        "customer_id": customer_id,
        "sku": sku,
        "location_id": location_id,
    }


def order_event(
    event_id: str, kind: str = "order.placed", channel: str = "web", customer_id: str | None = None
) -> dict[str, Any]:
    data = {
        "event_id": event_id,
        "channel": channel,
        "type": kind,
        "payload": {
            "kind": "order",
            "order_id": f"W-{event_id}",
            "currency": "EUR",
            "total": "59.90",
            "fulfilment": "in_store" if channel == "pos" else "ship",
        },
    }
    item: dict[str, Any] = {
        "pk": f"EVENT#{event_id}",
        "sk": "EVENT",
        "entity": "event",
        "event_id": event_id,
        "channel": channel,
        "type": kind,
        "data": json.dumps(data),
    }
    if customer_id:
        item["customer_id"] = customer_id
    return item


def week_budget(table: Table, customer_id: str = "c_1", week: str = "2026-W48") -> dict[str, Any]:
    """The customer's budget counters of ``week`` (which must exist)."""
    budget = table.get(f"CUST#{customer_id}", f"NOTIF#BUDGET#{week}")
    assert budget is not None, f"no budget for {customer_id} in {week}"
    return budget
