"""Store tills: one ticket per sale or return, with store, lines, payment and optional loyalty card."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from loyalty.models.events import (
    Channel,
    ChannelEvent,
    EventType,
    OrderLine,
    OrderPayload,
    RefundLine,
    RefundPayload,
    event_id_for,
)
from loyalty.models.identifiers import Identifier, IdentifierType


class TicketLine(BaseModel):
    model_config = ConfigDict(defer_build=True)
    line_no: int = Field(ge=1)
    sku: str
    qty: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0)
    family: str | None = None
    original_line_no: int | None = Field(default=None, ge=1, description="on a return: the sale's line")


class Payment(BaseModel):
    model_config = ConfigDict(defer_build=True)
    method: Literal["card", "cash", "voucher", "mobile", "gift_card", "mixed"]


class Ticket(BaseModel):
    model_config = ConfigDict(defer_build=True)
    ticket_id: str = Field(min_length=1)
    type: Literal["sale", "return"]
    store_id: str = Field(min_length=1)
    till_id: str | None = None
    issued_at: AwareDatetime
    currency: str
    total: Decimal = Field(ge=0)
    payment: Payment
    loyalty_card: str | None = None
    pos_customer_no: str | None = None
    lines: list[TicketLine] = Field(min_length=1)
    original_ticket_id: str | None = None

    @model_validator(mode="after")
    def _return_names_its_sale(self) -> Ticket:
        if self.type == "return" and not self.original_ticket_id:
            raise ValueError("a return ticket needs original_ticket_id")
        return self


def normalise(document: Any, received_at: datetime) -> list[ChannelEvent]:
    ticket = Ticket.model_validate(document)
    identifiers = []
    if ticket.loyalty_card:
        identifiers.append(Identifier(type=IdentifierType.LOYALTY_CARD, value=ticket.loyalty_card))
    if ticket.pos_customer_no:
        identifiers.append(Identifier(type=IdentifierType.POS_CUSTOMER, value=ticket.pos_customer_no))
    source = f"{ticket.store_id}:{ticket.ticket_id}"
    common: dict[str, Any] = {
        "event_id": event_id_for(Channel.POS, source),
        "channel": Channel.POS,
        "occurred_at": ticket.issued_at,
        "received_at": received_at,
        "source_event_id": source,
        "identifiers": identifiers,
    }
    if ticket.type == "sale":
        payload: OrderPayload | RefundPayload = OrderPayload(
            order_id=ticket.ticket_id,
            currency=ticket.currency,
            total=ticket.total,
            payment_method=ticket.payment.method,
            store_id=ticket.store_id,
            location_id=ticket.store_id,
            fulfilment="in_store",
            lines=[
                OrderLine(
                    line_id=str(li.line_no),
                    sku=li.sku,
                    quantity=li.qty,
                    unit_price=li.unit_price,
                    category=li.family,
                )
                for li in ticket.lines
            ],
        )
        return [ChannelEvent(**common, type=EventType.ORDER_COMPLETED, payload=payload)]
    assert ticket.original_ticket_id is not None
    payload = RefundPayload(
        order_id=ticket.original_ticket_id,
        refund_id=ticket.ticket_id,
        currency=ticket.currency,
        amount=ticket.total,
        restock_location_id=ticket.store_id,
        lines=[
            RefundLine(
                line_id=str(li.original_line_no or li.line_no),
                sku=li.sku,
                quantity=li.qty,
                amount=li.unit_price * li.qty,
            )
            for li in ticket.lines
        ],
    )
    return [ChannelEvent(**common, type=EventType.ORDER_REFUNDED, payload=payload)]
