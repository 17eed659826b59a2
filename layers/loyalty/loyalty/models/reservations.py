"""A reservation DynamoDB TTL deleted while still active, as the router hands it to stock.

The reservation job releases expired reservations; TTL is the safety net. When TTL deletes a
reservation item whose status was still ``held``/``ready``, the table stream's REMOVE reaches the
router, which sends this message to the stock queue so the held units are released (once).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RESERVATION_ENTITY = "reservation"
ACTIVE_STATUSES = frozenset({"held", "ready"})
LAPSED_KIND = "reservation.lapsed"


class ReservationLapsed(BaseModel):
    """The last image of a reservation removed by TTL while active (its units must be released)."""

    model_config = ConfigDict(defer_build=True)

    kind: Literal["reservation.lapsed"] = "reservation.lapsed"
    reservation_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    location_id: str = Field(min_length=1)
    quantity: int = Field(ge=1)
    hold_until: str = Field(min_length=1)
    allocations: dict[str, int]
    customer_id: str | None = None

    def to_item(self) -> dict[str, Any]:
        return self.model_dump(exclude={"kind"})
