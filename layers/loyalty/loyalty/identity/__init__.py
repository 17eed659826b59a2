"""Identity resolution: one customer per person across channels (graph, golden profile, merges).

Other capabilities only need ``resolve_customer_id``: the live id of a customer id they hold
(absorbed customers keep a ``REDIRECT`` item pointing at their survivor).
"""

from __future__ import annotations

from loyalty.store.table import Table


def resolve_customer_id(table: Table, customer_id: str) -> str:
    """Follow REDIRECT items from ``customer_id`` to the customer that absorbed it (or itself)."""
    from loyalty import customers

    return customers.resolve(table, customer_id)


__all__ = ["resolve_customer_id"]
