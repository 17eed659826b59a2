"""Aggregate routed events into daily per-channel KPIs, exactly once per event.

Items (docs/data-model.md, "KPIs"):
- ``KPI#<day>`` / ``CH#<channel>``: counters (``ADD``): ``events``, ``ev_<type>``, ``orders``,
  ``rev_<CUR>`` (minor units), ``pay_<method>``, ``payrev_<method>_<CUR>``, ``refunds``,
  ``refunded_<CUR>``, ``active_customers``, ``ropo``, ``showrooming``.
- ``EVENT#<id>`` / ``KPI``: the event was counted (in the same transaction as the counters).
- ``KPI#<day>`` / ``ACTIVE#<channel>#<customer>``: the customer was active on that channel that day.
- ``CUST#<id>`` / ``KPIVIEW#<sku>``: the last time the customer looked at a SKU online or in store,
  for ROPO (research online, purchase offline) and showrooming (look in store, buy online).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from loyalty.customers import customer_pk
from loyalty.errors import Conflict, InvalidInput
from loyalty.models.events import ChannelEvent, EventType, OrderPayload, RefundPayload
from loyalty.routing.router import RoutedEvent
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table, TransactionCancelled, tx_put_new, tx_update

RESEARCH_WINDOW = timedelta(days=30)
ONLINE = frozenset({"web", "app"})


def _minor(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _ttl(event: ChannelEvent) -> int:
    return int((event.received_at + timedelta(days=get_settings().event_retention_days)).timestamp())


def counters_for(event: ChannelEvent) -> dict[str, int]:
    """The counter increments one event contributes to its day and channel (pure)."""
    out = {"events": 1, f"ev_{event.type.value.replace('.', '_')}": 1}
    payload = event.payload
    if event.type is EventType.ORDER_COMPLETED and isinstance(payload, OrderPayload):
        out["orders"] = 1
        out[f"rev_{payload.currency}"] = _minor(payload.total)
        method = (payload.payment_method or "unknown").lower()
        out[f"pay_{method}"] = 1
        out[f"payrev_{method}_{payload.currency}"] = _minor(payload.total)
    elif event.type is EventType.ORDER_REFUNDED and isinstance(payload, RefundPayload):
        out["refunds"] = 1
        out[f"refunded_{payload.currency}"] = _minor(payload.amount)
    return out


def _add(pk: str, sk: str, increments: dict[str, int]) -> dict[str, Any]:
    names = {f"#a{i}": name for i, name in enumerate(increments)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(increments.values())}
    expr = "ADD " + ", ".join(f"#a{i} :v{i}" for i in range(len(increments)))
    expr += " SET #d = :day, #c = :ch, #e = :entity"
    names.update({"#d": "day", "#c": "channel", "#e": "entity"})
    values.update({":day": pk.removeprefix("KPI#"), ":ch": sk.removeprefix("CH#"), ":entity": "kpi_day"})
    return tx_update(pk, sk, expr, names=names, values=values)


class Kpis:
    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()

    def apply(self, routed: RoutedEvent) -> bool:
        """Count one routed event once; False when it had been counted already."""
        event = routed.event
        day = event.occurred_at.date().isoformat()
        pk, sk = f"KPI#{day}", f"CH#{event.channel.value}"
        increments = counters_for(event)
        if routed.customer_id and event.type is EventType.ORDER_COMPLETED:
            increments.update(self._cross_channel(routed.customer_id, event))
        marker = {
            "pk": f"EVENT#{event.event_id}",
            "sk": "KPI",
            "entity": "kpi_marker",
            "expires_at": _ttl(event),
        }
        try:
            self.table.transact([tx_put_new(marker), _add(pk, sk, increments)])
        except TransactionCancelled as err:
            if err.reasons and err.reasons[0] == "ConditionalCheckFailed":
                return False
            raise
        if routed.customer_id:
            self._mark_active(pk, sk, routed.customer_id, event)
            if event.type in (EventType.PRODUCT_VIEWED, EventType.WISHLIST_ADDED):
                self._remember_view(routed.customer_id, event)
        return True

    def _mark_active(self, pk: str, sk: str, customer_id: str, event: ChannelEvent) -> None:
        active = {
            "pk": pk,
            "sk": f"ACTIVE#{event.channel.value}#{customer_id}",
            "entity": "kpi_active",
            "expires_at": _ttl(event),
        }
        try:
            self.table.transact([tx_put_new(active), _add(pk, sk, {"active_customers": 1})])
        except TransactionCancelled as err:
            if not err.reasons or err.reasons[0] != "ConditionalCheckFailed":
                raise

    def _remember_view(self, customer_id: str, event: ChannelEvent) -> None:
        sku = getattr(event.payload, "sku", None)
        if not sku:
            return
        in_store = bool(getattr(event.payload, "store_id", None))
        where = "store" if in_store else "online"
        try:
            self.table.put(
                {
                    "pk": customer_pk(customer_id),
                    "sk": f"KPIVIEW#{sku}",
                    "entity": "kpi_view",
                    f"{where}_at": event.occurred_at.isoformat(),
                    "expires_at": int((event.occurred_at + RESEARCH_WINDOW).timestamp()),
                },
                condition=f"attribute_not_exists({where}_at) OR {where}_at < :at",
                values={":at": event.occurred_at.isoformat()},
            )
        except Conflict:
            return  # a newer view is already remembered

    def _cross_channel(self, customer_id: str, event: ChannelEvent) -> dict[str, int]:
        """ROPO (viewed online, bought in store) and showrooming (viewed in store, bought online)."""
        payload = event.payload
        assert isinstance(payload, OrderPayload)
        views = self.table.batch_get(
            [(customer_pk(customer_id), f"KPIVIEW#{line.sku}") for line in payload.lines]
        )
        since = (event.occurred_at - RESEARCH_WINDOW).isoformat()
        until = event.occurred_at.isoformat()

        def seen(field: str) -> bool:
            return any(since <= str(v.get(field, "")) <= until for v in views)

        out = {}
        if event.channel.value == "pos" and seen("online_at"):
            out["ropo"] = 1
        if event.channel.value in ONLINE | {"chat"} and seen("store_at"):
            out["showrooming"] = 1
        return out

    def daily(self, day: date) -> dict[str, Any]:
        """KPIs of one day per channel, with derived figures (one query)."""
        items, _ = self.table.query(f"KPI#{day.isoformat()}", sk_prefix="CH#", consistent=True)
        return {"date": day.isoformat(), "channels": {i["channel"]: summarise(i) for i in items}}


def summarise(item: Item) -> dict[str, Any]:
    """A counters item as the API shows it: amounts in major units, average ticket per currency."""
    orders = int(item.get("orders", 0))
    revenue = {k.removeprefix("rev_"): v / 100 for k, v in item.items() if k.startswith("rev_")}
    payment: dict[str, dict[str, Any]] = {}
    for key, value in item.items():
        if key.startswith("pay_"):
            payment.setdefault(key.removeprefix("pay_"), {})["orders"] = value
        elif key.startswith("payrev_"):
            method, currency = key.removeprefix("payrev_").rsplit("_", 1)
            payment.setdefault(method, {}).setdefault("revenue", {})[currency] = value / 100
    return {
        "events": int(item.get("events", 0)),
        "events_by_type": {k.removeprefix("ev_"): v for k, v in item.items() if k.startswith("ev_")},
        "orders": orders,
        "revenue": revenue,
        "average_ticket": {cur: round(total / orders, 2) for cur, total in revenue.items()} if orders else {},
        "sales_by_payment_method": payment,
        "refunds": int(item.get("refunds", 0)),
        "refunded": {
            k.removeprefix("refunded_"): v / 100 for k, v in item.items() if k.startswith("refunded_")
        },
        "active_customers": int(item.get("active_customers", 0)),
        "ropo_orders": int(item.get("ropo", 0)),
        "showrooming_orders": int(item.get("showrooming", 0)),
    }


def parse_day(value: str) -> date:
    """A ``yyyy-mm-dd`` path parameter."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not a date: {value!r}", code="invalid_date", field="day") from None
