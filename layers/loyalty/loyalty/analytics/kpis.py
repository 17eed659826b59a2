"""Aggregate routed events into daily KPIs per channel and per store, exactly once per event.

Items (docs/data-model.md, "KPIs"):
- ``KPI#<shard>`` / ``D#<day>#CH#<channel>`` and ``D#<day>#ST#<store_id>``: counters (``ADD``):
  ``events``, ``ev_<type>``, ``orders``, ``rev_<CUR>`` (minor units), ``pay_<method>``,
  ``payrev_<method>_<CUR>``, ``refunds``, ``refunded_<CUR>``, ``active_customers``, ``ropo``,
  ``showrooming``. A batch of events adds its sums to ONE shard (``KPI_SHARDS`` of them, picked
  by the batch's first event id), so no partition takes more than its share of the day's traffic;
  a read sums the shards (one query per shard covers any range of days).
- ``CUST#<id>`` / ``KPIACT#<day>``: ONE item per customer and day, the events of that customer
  counted that day (``events``, short tags) and the places it was active at (``places``:
  ``CH#<channel>``, ``ST#<store>``), put at the version read in the same transaction as the
  counters: the exactly-once marker of an attributed event AND its active-customer marker.
- ``EVENT#<id>`` / ``KPI``: an event without a customer was counted (same transaction).
- ``CUST#<id>`` / ``KPIVIEW#<sku>``: the last time the customer looked at a SKU online or in store,
  for ROPO (research online, purchase offline) and showrooming (look in store, buy online).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from loyalty.customers import customer_pk
from loyalty.errors import Conflict, InvalidInput, TransientError, Unprocessable
from loyalty.models.events import ChannelEvent, EventType, OrderPayload, RefundPayload
from loyalty.routing.router import RoutedEvent
from loyalty.settings import get_settings
from loyalty.store.table import Item, Table, TransactionCancelled, tx_put, tx_put_new, tx_update

RESEARCH_WINDOW = timedelta(days=30)
ONLINE = frozenset({"web", "app"})
#: write shards of the counters; every read queries each of them once
KPI_SHARDS = 32
#: actions of one transaction (DynamoDB's limit is 100)
MAX_ACTIONS = 100
MAX_RANGE_DAYS = 92
#: reads and writes of one chunk before the batch is handed back (TransientError)
MAX_ATTEMPTS = 10


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


def shard_pk(n: int) -> str:
    return f"KPI#{n:02d}"


def shard_of(event_id: str) -> int:
    return int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % KPI_SHARDS


def _add(pk: str, sk: str, increments: dict[str, int]) -> dict[str, Any]:
    """``ADD`` the increments to a counters item (``D#<day>#CH#<channel>`` or ``D#<day>#ST#<store>``)."""
    _, day, kind, name = sk.split("#", 3)
    names = {f"#a{i}": key for i, key in enumerate(increments)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(increments.values())}
    expr = "ADD " + ", ".join(f"#a{i} :v{i}" for i in range(len(increments)))
    expr += " SET #d = :day, #k = :name, #e = :entity"
    names.update({"#d": "day", "#k": "channel" if kind == "CH" else "store_id", "#e": "entity"})
    values.update({":day": day, ":name": name, ":entity": "kpi_day"})
    return tx_update(pk, sk, expr, names=names, values=values)


@dataclass
class _Contribution:
    """What one event adds: its counters per item, and where its customer was active that day.

    An event with a customer is marked counted in that customer's day item (``active_key``); one
    without carries its own ``EVENT#<id>`` / ``KPI`` marker.
    """

    index: int
    event_id: str
    day: str
    counters: dict[str, dict[str, int]]  # counters item sk -> increments
    places: list[str]
    expires_at: int
    customer_id: str | None = None

    @property
    def active_key(self) -> tuple[str, str]:
        assert self.customer_id
        return customer_pk(self.customer_id), f"KPIACT#{self.day}"

    def marker(self) -> dict[str, Any]:
        return {
            "pk": f"EVENT#{self.event_id}",
            "sk": "KPI",
            "entity": "kpi_marker",
            "expires_at": self.expires_at,
        }


def _merge(into: dict[str, dict[str, int]], sk: str, increments: dict[str, int]) -> None:
    target = into.setdefault(sk, {})
    for name, value in increments.items():
        target[name] = target.get(name, 0) + value


def _put_at_version(item: Item, existed: bool) -> dict[str, Any]:
    """Put a customer's day item if it is still at the version read (absent, if it was)."""
    if not existed:
        return tx_put(item, "attribute_not_exists(pk)")
    return tx_put(item, "#v = :v", names={"#v": "version"}, values={":v": item["version"] - 1})


def event_tag(event_id: str) -> str:
    """The short form of an event id kept in a customer's day item (48 bits: no collision among
    the few events of one customer and day, and the item stays well under 1 KB)."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:12]


class Kpis:
    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()
        #: the views the batch being counted remembered, (customer, sku) -> their items: a sale in
        #: the same batch sees them whatever an eventually consistent read of ``KPIVIEW`` returns
        self._views: dict[tuple[str, str], list[Item]] = {}

    def apply(self, routed: RoutedEvent) -> bool:
        """Count one routed event once; False when it had been counted already."""
        return self.apply_batch([routed])[0]

    def apply_batch(self, batch: Sequence[RoutedEvent]) -> list[bool]:
        """Count each event once (False for those counted already), summing the batch per item.

        Each transaction holds ONE item per customer and day (``KPIACT#<day>``: the events of
        that customer counted that day and the places it was active at, put at the version read),
        the markers of events without a customer, and ONE ``ADD`` per counters item with the sum
        of the events it carries. A transaction is all or nothing, so an event is never half
        counted; a lost race (a version moved, a marker exists) reads again and drops what was
        counted meanwhile.
        """
        results = [False] * len(batch)
        self._views = {}
        for routed in batch:  # first, so that a sale in the same batch sees the view
            if routed.customer_id and routed.event.type in (
                EventType.PRODUCT_VIEWED,
                EventType.WISHLIST_ADDED,
            ):
                self._remember_view(routed.customer_id, routed.event)
        seen: set[str] = set()
        chunk: list[_Contribution] = []
        for i, routed in enumerate(batch):
            if routed.event.event_id in seen:
                continue  # the same event twice in one batch: counted (at most) once
            seen.add(routed.event.event_id)
            contribution = self._contribution(i, routed)
            if chunk and self._actions([*chunk, contribution]) > MAX_ACTIONS:
                self._write(chunk, results)
                chunk = []
            chunk.append(contribution)
        if chunk:
            self._write(chunk, results)
        return results

    def _contribution(self, index: int, routed: RoutedEvent) -> _Contribution:
        event = routed.event
        day = event.occurred_at.date().isoformat()
        increments = counters_for(event)
        if routed.customer_id and event.type is EventType.ORDER_COMPLETED:
            increments.update(self._cross_channel(routed.customer_id, event))
        places = [f"CH#{event.channel.value}"]
        store = getattr(event.payload, "store_id", None)
        if store:
            places.append(f"ST#{store}")
        return _Contribution(
            index,
            event.event_id,
            day,
            {f"D#{day}#{p}": dict(increments) for p in places},
            places,
            _ttl(event),
            routed.customer_id,
        )

    @staticmethod
    def _actions(chunk: list[_Contribution]) -> int:
        items = {c.active_key if c.customer_id else ("EVENT", c.event_id) for c in chunk}
        counters = {sk for c in chunk for sk in c.counters}
        return len(items) + len(counters)

    def _plan(
        self, chunk: list[_Contribution], current: dict[tuple[str, str], Item]
    ) -> tuple[list[_Contribution], dict[tuple[str, str], Item], dict[str, dict[str, int]]]:
        """The events still to count, the customer day items to put, and the counter sums."""
        live: list[_Contribution] = []
        days: dict[tuple[str, str], Item] = {}
        sums: dict[str, dict[str, int]] = {}
        for c in chunk:
            if c.customer_id:
                key = c.active_key
                old = current.get(key, {})
                item = days.get(key) or {
                    "pk": key[0],
                    "sk": key[1],
                    "entity": "kpi_active",
                    "day": c.day,
                    "events": list(old.get("events", [])),
                    "places": list(old.get("places", [])),
                    "version": int(old.get("version", 0)) + 1,
                    "expires_at": c.expires_at,
                }
                tag = event_tag(c.event_id)
                if tag in item["events"]:
                    continue  # counted before
                item["events"].append(tag)
                for place in c.places:
                    if place not in item["places"]:
                        item["places"].append(place)
                        _merge(sums, f"D#{c.day}#{place}", {"active_customers": 1})
                days[key] = item
            live.append(c)
            for sk, increments in c.counters.items():
                _merge(sums, sk, increments)
        return live, days, sums

    def _write(self, chunk: list[_Contribution], results: list[bool]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            live, refused = self._attempt(chunk, consistent=attempt > 0)
            if refused is None:
                for c in live:
                    results[c.index] = True
                return
            chunk = [c for c in chunk if id(c) not in refused]  # counted before: drop them
        raise TransientError(f"KPIs of {len(chunk)} events: too many concurrent changes, retry")

    def _attempt(
        self, chunk: list[_Contribution], *, consistent: bool
    ) -> tuple[list[_Contribution], set[int] | None]:
        """Read the customers' day items and write the chunk at those versions: (the events
        counted, None), or (_, the refused markers) when a race lost and the chunk must be read again.

        The first read is eventually consistent (half the units): a stale day item (absent, or at
        an older version) fails the put at the version read, and the retry reads consistently. A
        stale item never makes an event look counted: an item only gains event tags."""
        keys = sorted({c.active_key for c in chunk if c.customer_id})
        current = (
            {(i["pk"], i["sk"]): i for i in self.table.batch_get(keys, consistent=consistent)} if keys else {}
        )
        live, days, sums = self._plan(chunk, current)
        if not live:
            return [], None
        markers = [c for c in live if not c.customer_id]
        actions = [tx_put_new(c.marker()) for c in markers]
        actions.extend(_put_at_version(item, key in current) for key, item in sorted(days.items()))
        pk = shard_pk(shard_of(f"EVENT#{chunk[0].event_id}"))
        actions.extend(_add(pk, sk, inc) for sk, inc in sorted(sums.items()))
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            if any(r not in ("None", "ConditionalCheckFailed") for r in err.reasons):
                raise
            return live, {id(markers[i]) for i, r in enumerate(err.reasons[: len(markers)]) if r != "None"}
        return live, None

    def _remember_view(self, customer_id: str, event: ChannelEvent) -> None:
        sku = getattr(event.payload, "sku", None)
        if not sku:
            return
        in_store = bool(getattr(event.payload, "store_id", None))
        where = "store" if in_store else "online"
        view = {
            "pk": customer_pk(customer_id),
            "sk": f"KPIVIEW#{sku}",
            "entity": "kpi_view",
            f"{where}_at": event.occurred_at.isoformat(),
            "expires_at": int((event.occurred_at + RESEARCH_WINDOW).timestamp()),
        }
        self._views.setdefault((customer_id, sku), []).append(view)
        try:
            self.table.put(
                view,
                condition=f"attribute_not_exists({where}_at) OR {where}_at < :at",
                values={":at": event.occurred_at.isoformat()},
            )
        except Conflict:
            return  # a newer view is already remembered

    def _cross_channel(self, customer_id: str, event: ChannelEvent) -> dict[str, int]:
        """ROPO (viewed online, bought in store) and showrooming (viewed in store, bought online).

        The views are read eventually consistent: a view a replica has not seen yet counts as a
        view delivered a moment after the sale, which the unordered analytics queue allows anyway
        (the sale is counted, without ROPO); the views of this batch are taken from memory.
        """
        payload = event.payload
        assert isinstance(payload, OrderPayload)
        views = self.table.batch_get(
            [(customer_pk(customer_id), f"KPIVIEW#{line.sku}") for line in payload.lines], consistent=False
        )
        views += [v for line in payload.lines for v in self._views.get((customer_id, line.sku), [])]
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
        """KPIs of one day per channel and per store, with derived figures."""
        days: list[dict[str, Any]] = self.range(day, day)["days"]
        return days[0]

    def range(self, start: date, end: date, store: str | None = None) -> dict[str, Any]:
        """KPIs of every day from ``start`` to ``end`` (inclusive) and their totals, per channel
        and per store (only ``store``'s when given): one query per shard, in parallel."""
        if end < start or (end - start).days >= MAX_RANGE_DAYS:
            raise Unprocessable(
                f"from must not be after to, at most {MAX_RANGE_DAYS} days",
                code="invalid_range",
                field="from",
            )
        lo, hi = f"D#{start.isoformat()}#", f"D#{end.isoformat()}#~"

        def shard(n: int) -> list[Item]:
            return list(self.table.query_all(shard_pk(n), sk_between=(lo, hi), consistent=True))

        with ThreadPoolExecutor(max_workers=8) as pool:
            shards = list(pool.map(shard, range(KPI_SHARDS)))
        per_day: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        totals: dict[str, dict[str, dict[str, int]]] = {"channels": {}, "stores": {}}
        for items in shards:
            for item in items:
                _, day, kind, name = str(item["sk"]).split("#", 3)
                if store is not None and (kind != "ST" or name != store):
                    continue
                group = "channels" if kind == "CH" else "stores"
                counters = {k: int(v) for k, v in item.items() if isinstance(v, int) and k != "expires_at"}
                _merge(per_day.setdefault(day, {"channels": {}, "stores": {}})[group], name, counters)
                _merge(totals[group], name, counters)
        days = []
        for offset in range((end - start).days + 1):
            day = (start + timedelta(days=offset)).isoformat()
            found = per_day.get(day, {"channels": {}, "stores": {}})
            days.append(
                {
                    "date": day,
                    "channels": {k: summarise(v) for k, v in sorted(found["channels"].items())},
                    "stores": {k: summarise(v) for k, v in sorted(found["stores"].items())},
                }
            )
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "days": days,
            "totals": {
                group: {k: summarise(v) for k, v in sorted(sums.items())} for group, sums in totals.items()
            },
        }


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


def parse_day(value: str, field: str = "day") -> date:
    """A ``yyyy-mm-dd`` parameter."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not a date: {value!r}", code="invalid_date", field=field) from None
