"""Quarantined merges: ``MERGEREVIEW#<id>`` items staff approve or reject.

The review id is derived from the sorted customer ids, so every event that would join the same
customers lands on the same review (one per group), and a rejection keeps them apart for good.
Listed per status through GSI1 (``gsi1pk = MERGEREVIEW#<status>``, ``gsi1sk = <created_at>#<id>``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from loyalty.errors import Conflict, NotFound
from loyalty.identity.profile import iso
from loyalty.identity.store import REVIEW_ENTITY, review_key
from loyalty.models.events import ChannelEvent
from loyalty.store.table import Item, Table

_REVIEW_NS = uuid.UUID("a3d9b1f4-52a0-4f55-8d0e-7f7f3c8a9e20")
STATUSES = ("pending", "approved", "rejected")


def review_id_for(customer_ids: Iterable[str]) -> str:
    return f"r_{uuid.uuid5(_REVIEW_NS, '|'.join(sorted(customer_ids))).hex}"


def unmerged_review_item(customer_ids: list[str], survivor_id: str, merge_id: str, at: str) -> Item:
    """A rejected review for customers staff split apart: no later event merges them again."""
    review_id = review_id_for(customer_ids)
    pk, sk = review_key(review_id)
    return {
        "pk": pk,
        "sk": sk,
        "entity": REVIEW_ENTITY,
        "gsi1pk": "MERGEREVIEW#rejected",
        "gsi1sk": f"{at}#{review_id}",
        "review_id": review_id,
        "status": "rejected",
        "customer_ids": sorted(customer_ids),
        "survivor_id": survivor_id,
        "problems": ["unmerged"],
        "event_id": merge_id,
        "channel": "staff",
        "identifier_types": [],
        "created_at": at,
        "decided_at": at,
        "decided_by": "unmerge",
        "merge_id": merge_id,
    }


class ReviewStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, review_id: str) -> Item | None:
        return self.table.get(*review_key(review_id))

    def open(
        self,
        review_id: str,
        customer_ids: list[str],
        survivor_id: str,
        problems: list[str],
        event: ChannelEvent,
    ) -> bool:
        """Open a pending review once (False when it already existed)."""
        now = iso(datetime.now(UTC))
        pk, sk = review_key(review_id)
        return self.table.put_new(
            {
                "pk": pk,
                "sk": sk,
                "entity": REVIEW_ENTITY,
                "gsi1pk": "MERGEREVIEW#pending",
                "gsi1sk": f"{now}#{review_id}",
                "review_id": review_id,
                "status": "pending",
                "customer_ids": customer_ids,
                "survivor_id": survivor_id,
                "problems": problems,
                "event_id": event.event_id,
                "channel": event.channel.value,
                "identifier_types": sorted({i.type.value for i in event.identifiers}),
                "created_at": now,
            }
        )

    def list(
        self, status: str, limit: int = 50, cursor: dict[str, Any] | None = None
    ) -> tuple[list[Item], Item | None]:
        return self.table.query(f"MERGEREVIEW#{status}", index="gsi1", limit=limit, start_key=cursor)

    def decide(self, review_id: str, decision: str, by: str, merge_id: str | None = None) -> Item:
        """Move a pending review to approved / rejected (409 when already decided)."""
        review = self.get(review_id)
        if review is None:
            raise NotFound(f"merge review {review_id} not found", code="review_not_found")
        now = iso(datetime.now(UTC))
        try:
            return self.table.update(
                *review_key(review_id),
                "SET #st = :s, gsi1pk = :g, decided_at = :at, decided_by = :by, merge_id = :m",
                condition="#st = :pending",
                names={"#st": "status"},
                values={
                    ":s": decision,
                    ":g": f"MERGEREVIEW#{decision}",
                    ":at": now,
                    ":by": by,
                    ":m": merge_id,
                    ":pending": "pending",
                },
            )
        except Conflict as err:
            raise Conflict(
                f"merge review {review_id} is already {review.get('status')}", code="review_decided"
            ) from err
