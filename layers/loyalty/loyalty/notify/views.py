"""What the customer-360 API and the demo show of a customer's notifications (read-only)."""

from __future__ import annotations

from typing import Any

from loyalty.customers import customer_pk
from loyalty.notify.store import LOG_ENTITY
from loyalty.store.table import Item, Table

_HIDDEN = ("pk", "sk", "entity", "expires_at")


def _public(item: Item) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _HIDDEN}


def outbox(customer_id: str, *, limit: int = 20, table: Table | None = None) -> list[dict[str, Any]]:
    """The latest messages the outbox adapter delivered to the customer, newest first."""
    items, _ = (table or Table()).query(
        customer_pk(customer_id), sk_prefix="NOTIF#OUT#", forward=False, limit=limit
    )
    return [_public(i) for i in items]


def history(customer_id: str, *, limit: int = 50, table: Table | None = None) -> list[dict[str, Any]]:
    """Every message planned for the customer (sent, queued, deferred or suppressed and why), newest first.

    Reads the customer's timeline (``TL#``), which also holds identity's event entries: those are
    skipped, so a page may hold fewer than ``limit`` entries.
    """
    items, _ = (table or Table()).query(customer_pk(customer_id), sk_prefix="TL#", forward=False, limit=limit)
    return [_public(i) for i in items if i.get("entity") == LOG_ENTITY]


def notification_view(customer_id: str, *, table: Table | None = None) -> dict[str, Any]:
    """The notifications block of a customer-360 answer."""
    table = table or Table()
    return {"history": history(customer_id, table=table), "outbox": outbox(customer_id, table=table)}
