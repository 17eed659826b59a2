"""Customer keys and REDIRECT following: the one place every capability reads them from.

A customer's items share the partition ``CUST#<id>``; its golden profile is ``PROFILE`` and an
absorbed customer keeps a ``REDIRECT`` item naming the survivor that absorbed it (identity writes
both; see docs/data-model.md, "Identity"). Every capability that holds a customer id follows
REDIRECTs here, with one hop limit and one failure (``Conflict`` ``redirect_loop``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from loyalty.errors import Conflict

if TYPE_CHECKING:
    from loyalty.store.table import Item, Table

CUSTOMER_PREFIX = "CUST#"
PROFILE_SK = "PROFILE"
REDIRECT_SK = "REDIRECT"
MAX_REDIRECT_HOPS = 16
#: a timeline entry (``CUST#<id>`` / ``TL#<occurred_at>#<event_id>``, written by identity)
TIMELINE_ENTITY = "timeline"
#: the ``stage`` of the timeline entry whose INSERT attributes its event (the router routes it)
ATTRIBUTED = "attributed"


def customer_pk(customer_id: str) -> str:
    return f"{CUSTOMER_PREFIX}{customer_id}"


def customer_id_of(pk: str) -> str:
    """The customer id of a ``CUST#<id>`` partition key."""
    return pk.removeprefix(CUSTOMER_PREFIX)


def profile_key(customer_id: str) -> tuple[str, str]:
    return customer_pk(customer_id), PROFILE_SK


def redirect_key(customer_id: str) -> tuple[str, str]:
    return customer_pk(customer_id), REDIRECT_SK


def attributes_event(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> bool:
    """Whether a stream record is the INSERT of a timeline entry that attributes its event."""
    if not new or old:
        return False
    return new.get("entity") == TIMELINE_ENTITY and new.get("stage") == ATTRIBUTED


def survivor_named(items: Iterable[Item | None]) -> str | None:
    """The survivor a REDIRECT item among ``items`` names (None: no REDIRECT, the customer is live)."""
    for item in items:
        if item and item.get("sk") == REDIRECT_SK and item.get("survivor_id"):
            return str(item["survivor_id"])
    return None


def follow[T](customer_id: str, read: Callable[[str], tuple[str | None, T]]) -> tuple[str, T]:
    """Follow REDIRECTs from ``customer_id``: ``read(id)`` returns (the survivor its REDIRECT names,
    or None when ``id`` is live; whatever it read of ``id``); the live id and what was read of it."""
    current = customer_id
    for _ in range(MAX_REDIRECT_HOPS):
        survivor, found = read(current)
        if survivor is None:
            return current, found
        current = survivor
    raise Conflict(f"redirect chain too long from {customer_id}", code="redirect_loop")


def resolve(table: Table, customer_id: str, *, consistent: bool = True) -> str:
    """The live id of ``customer_id`` (itself unless it was absorbed)."""

    def read(cid: str) -> tuple[str | None, None]:
        return survivor_named([table.get(*redirect_key(cid), consistent=consistent)]), None

    return follow(customer_id, read)[0]


__all__ = [
    "ATTRIBUTED",
    "CUSTOMER_PREFIX",
    "MAX_REDIRECT_HOPS",
    "PROFILE_SK",
    "REDIRECT_SK",
    "TIMELINE_ENTITY",
    "attributes_event",
    "customer_id_of",
    "customer_pk",
    "follow",
    "profile_key",
    "redirect_key",
    "resolve",
    "survivor_named",
]
