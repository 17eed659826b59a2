"""ERP / warehouse stock feed: counts, receipts and adjustments of many SKUs at one location.

``{"message_id", "type": "count"|"receipt"|"adjustment", "location_id", "counted_at" (count) or
"occurred_at" (receipt, adjustment), "reason"?, "lines": [{"sku", "quantity"}]}`` becomes one
canonical event per line: ``stock.counted`` (absolute quantity, with the count's timestamp) or
``stock.adjusted`` (a signed delta; a receipt is positive). Event ids derive from the message id
and the line, so a redelivered message dedupes line by line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from loyalty.models.events import Channel, ChannelEvent, EventType, StockPayload, event_id_for

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class StockLine(BaseModel):
    model_config = ConfigDict(defer_build=True)
    sku: str = Field(pattern=CODE)
    quantity: int = Field(ge=-1_000_000, le=1_000_000)


class StockMessage(BaseModel):
    model_config = ConfigDict(defer_build=True)
    message_id: str = Field(min_length=1, max_length=128)
    type: Literal["count", "receipt", "adjustment"]
    location_id: str = Field(pattern=CODE)
    counted_at: AwareDatetime | None = None
    occurred_at: AwareDatetime | None = None
    reason: str | None = Field(default=None, max_length=64)
    lines: list[StockLine] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> StockMessage:
        if self.type == "count" and self.counted_at is None:
            raise ValueError("a count needs counted_at")
        if self.type != "count" and self.occurred_at is None:
            raise ValueError(f"a {self.type} needs occurred_at")
        if len({line.sku for line in self.lines}) != len(self.lines):
            raise ValueError("each sku appears once per message")
        for line in self.lines:
            if self.type == "count" and line.quantity < 0:
                raise ValueError(f"a count of {line.sku} cannot be negative")
            if self.type == "receipt" and line.quantity <= 0:
                raise ValueError(f"a receipt of {line.sku} must be positive")
            if self.type == "adjustment" and line.quantity == 0:
                raise ValueError(f"an adjustment of {line.sku} cannot be zero")
        return self


def normalise(document: Any, received_at: datetime) -> list[ChannelEvent]:
    msg = StockMessage.model_validate(document)
    when = msg.counted_at if msg.type == "count" else msg.occurred_at
    assert when is not None
    kind = EventType.STOCK_COUNTED if msg.type == "count" else EventType.STOCK_ADJUSTED
    reason = msg.reason or msg.type
    return [
        ChannelEvent(
            event_id=event_id_for(Channel.STOCK, msg.message_id, f"{msg.location_id}:{line.sku}"),
            channel=Channel.STOCK,
            type=kind,
            occurred_at=when,
            received_at=received_at,
            source_event_id=f"{msg.message_id}:{line.sku}",
            payload=StockPayload(
                location_id=msg.location_id,
                sku=line.sku,
                quantity=line.quantity,
                reason=reason,
                counted_at=when.astimezone(UTC) if msg.type == "count" else None,
            ),
        )
        for line in msg.lines
    ]
