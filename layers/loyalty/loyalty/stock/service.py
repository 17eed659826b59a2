"""Stock use cases: apply canonical events, reservations, availability, alerts and signals.

Order rules (docs/architecture.md, "Stock"):
- an order's stock is committed ONCE, by the first of ``order.placed`` / ``order.completed`` to
  reach stock (a POS sale is completed in store; a web order is placed, then paid; a chat order
  may arrive already paid). The ``STKORD#<channel>#<order_id>`` record is the lock: the later
  event of the same order finds it and changes nothing. Lines leave from ``location_id``.
- ``order.cancelled`` restores what the order took; a cancel that arrives first leaves a
  tombstone so the late placement is ignored.
- ``order.refunded`` with ``restock_location_id`` puts the returned units back there.
- ``stock.counted`` sets an absolute count, ``stock.adjusted`` applies a delta.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from loyalty.auth.policy import require_store
from loyalty.auth.principal import Principal
from loyalty.errors import Conflict, NotFound, TransientError, Unprocessable
from loyalty.models.events import (
    CancelPayload,
    ChannelEvent,
    EventType,
    OrderPayload,
    RefundPayload,
    StockPayload,
)
from loyalty.models.reservations import ACTIVE_STATUSES, LAPSED_KIND, ReservationLapsed
from loyalty.routing.router import RoutedEvent
from loyalty.settings import Settings, get_settings
from loyalty.stock import model
from loyalty.stock.model import ONLINE, LocationStock
from loyalty.stock.store import StockStore

_RES_NS = uuid.UUID("0b8f5d3e-7c1a-4e2b-9d6f-3a5c7e9b1d20")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
SIGNAL_RETENTION_DAYS = 30
MAX_BATCH_SKUS = 50
CAPPED_ATTEMPTS = 8


def _now() -> datetime:
    return datetime.now(UTC)


def stock_store(settings: Settings | None = None) -> StockStore:
    settings = settings or get_settings()
    return StockStore(move_retention_days=settings.stock_move_retention_days)


def active_shards(store: StockStore, sku: str) -> int:
    """How many shards take writes for this SKU (``shards`` of its CONFIG item; 1 by default)."""
    return max(1, min(int(store.config(sku).get("shards", 1)), model.MAX_SHARDS))


def online_locations(settings: Settings) -> list[str]:
    return [loc.strip() for loc in settings.online_locations.split(",") if loc.strip()]


# -- events -------------------------------------------------------------------------------------
Touched = set[tuple[str, str]]


def apply_message(body: str) -> Touched:
    """Apply one stock-queue message (a RoutedEvent or a lapsed reservation); signals after."""
    data = json.loads(body)
    store = stock_store()
    if isinstance(data, dict) and data.get("kind") == LAPSED_KIND:
        lapsed = ReservationLapsed.model_validate(data)
        touched = {(lapsed.sku, lapsed.location_id)} if store.release_removed(lapsed.to_item()) else set()
    else:
        touched = apply_event(store, RoutedEvent.model_validate(data).event)
    for sku, location_id in sorted(touched):
        evaluate_signals(store, sku, location_id)
    return touched


def apply_event(store: StockStore, event: ChannelEvent) -> Touched:
    """Apply a canonical event's stock effect exactly once; the (sku, location) pairs touched."""
    payload = event.payload
    at = model.stamp(event.occurred_at)
    match event.type, payload:
        case EventType.ORDER_PLACED | EventType.ORDER_COMPLETED, OrderPayload():
            return commit_order(store, event, payload)
        case EventType.ORDER_CANCELLED, CancelPayload():
            return cancel_order(store, event, payload)
        case EventType.ORDER_REFUNDED, RefundPayload() if payload.restock_location_id:
            loc = payload.restock_location_id
            for line in payload.lines:
                key = f"refund:{event.event_id}:{line.line_id}"
                store.move(
                    line.sku,
                    loc,
                    line.quantity,
                    at=at,
                    key=key,
                    reason="return",
                    active=active_shards(store, line.sku),
                )
            return {(line.sku, loc) for line in payload.lines}
        case EventType.STOCK_COUNTED, StockPayload():
            counted_at = model.stamp(payload.counted_at or event.occurred_at)
            store.count(
                payload.sku,
                payload.location_id,
                payload.quantity,
                at=counted_at,
                key=f"count:{event.event_id}",
                active=active_shards(store, payload.sku),
            )
            return {(payload.sku, payload.location_id)}
        case EventType.STOCK_ADJUSTED, StockPayload():
            store.move(
                payload.sku,
                payload.location_id,
                payload.quantity,
                at=at,
                key=f"adj:{event.event_id}",
                reason=payload.reason or "adjustment",
                active=active_shards(store, payload.sku),
            )
            return {(payload.sku, payload.location_id)}
    return set()


def commit_order(store: StockStore, event: ChannelEvent, order: OrderPayload) -> Touched:
    """Take an order's lines at its location, once per order (whichever event comes first)."""
    channel = event.channel.value
    pk, sk = model.order_key(channel, order.order_id)
    record: dict[str, Any] = {
        "pk": pk,
        "sk": sk,
        "entity": model.ORDER_ENTITY,
        "channel": channel,
        "order_id": order.order_id,
        "status": "committing",
        "event_id": event.event_id,
        "at": model.stamp(event.occurred_at),
        "location_id": order.location_id,
        "fulfilment": order.fulfilment,
        "lines": [{"line_id": li.line_id, "sku": li.sku, "quantity": li.quantity} for li in order.lines],
    }
    if not store.open_order(record):
        existing = store.get_order(channel, order.order_id)
        if existing is None:
            raise TransientError(f"order {order.order_id} record vanished")
        if existing["status"] != "committing" or existing["event_id"] != event.event_id:
            return set()  # committed by its other event, or cancelled before it arrived
        record = existing
    taken: dict[str, int] = {}
    shortfall: dict[str, int] = {}
    loc = record["location_id"]
    for line in record["lines"]:
        applied = store.move(
            line["sku"],
            loc,
            -int(line["quantity"]),
            at=record["at"],
            key=f"ord:{channel}:{order.order_id}:{line['line_id']}",
            reason=f"order_{record['fulfilment']}",
            active=active_shards(store, line["sku"]),
        )
        taken[line["line_id"]] = -applied.on_hand_delta
        if applied.shortfall:
            shortfall[line["line_id"]] = applied.shortfall
    store.close_order(channel, order.order_id, "committed", "committing", taken=taken, shortfall=shortfall)
    return {(line["sku"], loc) for line in record["lines"]}


def cancel_order(store: StockStore, event: ChannelEvent, cancel: CancelPayload) -> Touched:
    """Put back what an order took; a cancel arriving first leaves a tombstone."""
    channel = event.channel.value
    existing = store.get_order(channel, cancel.order_id)
    if existing is None:
        pk, sk = model.order_key(channel, cancel.order_id)
        tombstone = {
            "pk": pk,
            "sk": sk,
            "entity": model.ORDER_ENTITY,
            "channel": channel,
            "order_id": cancel.order_id,
            "status": "cancelled",
            "event_id": event.event_id,
            "lines": [],
        }
        if store.open_order(tombstone):
            return set()
        existing = store.get_order(channel, cancel.order_id)
        if existing is None:
            raise TransientError(f"order {cancel.order_id} record vanished")
    if existing["status"] == "cancelled":
        return set()
    if existing["status"] == "committing":
        raise TransientError(f"order {cancel.order_id} is still being committed; retry the cancel")
    loc = existing["location_id"]
    at = model.stamp(event.occurred_at)
    taken = existing.get("taken", {})
    for line in existing["lines"]:
        units = int(taken.get(line["line_id"], 0))
        if units:
            store.move(
                line["sku"],
                loc,
                units,
                at=at,
                key=f"cancel:{channel}:{cancel.order_id}:{line['line_id']}",
                reason="order_cancelled",
                active=active_shards(store, line["sku"]),
            )
    store.close_order(channel, cancel.order_id, "cancelled", "committed", cancelled_by=event.event_id)
    return {(line["sku"], loc) for line in existing["lines"]}


# -- signals ------------------------------------------------------------------------------------
def evaluate_signals(store: StockStore, sku: str, location_id: str) -> list[str]:
    """Emit out_of_stock / back_in_stock / low_stock when a location (or ONLINE) changes state."""
    settings = get_settings()
    threshold = int(store.config(sku).get("low_stock_threshold", settings.low_stock_threshold))
    emitted = []
    items = store.location_items(sku, location_id)
    available = sum(s.available for s in model.group_shards(items).get(location_id, []))
    state = _meta_signal(items, location_id)
    signal = _move_state(store, sku, location_id, available, state, threshold)
    if signal:
        emitted.append(signal)
    online = online_locations(settings)
    if location_id in online:
        total = available + sum(
            sum(s.available for s in store.shards(sku, loc)) for loc in online if loc != location_id
        )
        online_state = _meta_signal(store.location_items(sku, ONLINE), ONLINE)
        signal = _move_state(store, sku, ONLINE, total, online_state, threshold)
        if signal:
            emitted.append(f"{ONLINE}:{signal}")
    return emitted


def _meta_signal(items: list[dict[str, Any]], location_id: str) -> model.SignalState | None:
    for item in items:
        if item["sk"] == model.meta_sk(location_id):
            state: model.SignalState | None = item.get("signal")
            return state
    return None


def _move_state(
    store: StockStore,
    sku: str,
    location_id: str,
    available: int,
    previous: model.SignalState | None,
    threshold: int,
) -> str | None:
    state = model.signal_state(available, threshold)
    if state == previous or (previous is None and state == "in_stock"):
        return None
    signal = model.transition(previous, state)
    item = None
    if signal is not None:
        now = _now()
        item = {
            "pk": model.sku_pk(sku),
            "sk": model.signal_sk(location_id, model.stamp(now), signal),
            "entity": model.SIGNAL_ENTITY,
            "signal": signal,
            "sku": sku,
            "location_id": location_id,
            "available": available,
            "low_stock_threshold": threshold,
            "at": model.stamp(now),
            "expires_at": int((now + timedelta(days=SIGNAL_RETENTION_DAYS)).timestamp()),
        }
    if store.set_signal_state(sku, location_id, previous, state, item) and signal:
        return signal
    return None


# -- availability ---------------------------------------------------------------------------------
def _figures(stock: LocationStock) -> dict[str, Any]:
    return {
        "location_id": stock.location_id,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "updated_at": stock.updated_at,
        "counted_at": stock.counted_at,
    }


def availability(sku: str, store: StockStore | None = None) -> dict[str, Any]:
    """Per location and total, with freshness: ONE query of the SKU collection."""
    store = store or stock_store()
    items = store.availability_items(sku)
    by_location = model.group_shards(items)
    if not by_location:
        raise NotFound(f"no stock is known for {sku}", code="sku_not_found", field="sku")
    config = next((i for i in items if i["sk"] == model.CONFIG_SK), {})
    locations = [LocationStock.of(loc, shards) for loc, shards in sorted(by_location.items())]
    online = set(online_locations(get_settings()))
    online_stock = [s for s in locations if s.location_id in online]
    stamps = [s.updated_at for s in locations if s.updated_at]
    return {
        "sku": sku,
        "available": sum(s.available for s in locations),
        "on_hand": sum(s.on_hand for s in locations),
        "reserved": sum(s.reserved for s in locations),
        "online_available": sum(s.available for s in online_stock),
        "updated_at": max(stamps) if stamps else None,
        "low_stock_threshold": config.get("low_stock_threshold", get_settings().low_stock_threshold),
        "locations": [_figures(s) for s in locations],
    }


def batch_availability(skus: list[str], location_id: str | None) -> list[dict[str, Any]]:
    """Availability of many SKUs (one query each, in parallel), at one location or in total."""
    store = stock_store()

    def one(sku: str) -> dict[str, Any]:
        if location_id is None:
            items = store.availability_items(sku)
            locations = [LocationStock.of(loc, s) for loc, s in model.group_shards(items).items()]
            stamps = [s.updated_at for s in locations if s.updated_at]
            return {
                "sku": sku,
                "available": sum(s.available for s in locations),
                "updated_at": max(stamps) if stamps else None,
            }
        shards = model.group_shards(store.location_items(sku, location_id)).get(location_id, [])
        stock = LocationStock.of(location_id, shards)
        return {
            "sku": sku,
            "location_id": location_id,
            "available": stock.available,
            "updated_at": stock.updated_at,
        }

    with ThreadPoolExecutor(max_workers=min(8, len(skus) or 1)) as pool:
        return list(pool.map(one, skus))


# -- reservations ---------------------------------------------------------------------------------
class ReservationRequest(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(pattern=ID_PATTERN)
    quantity: int = Field(ge=1, le=100)
    location_id: str = Field(pattern=ID_PATTERN)


class StockAlertRequest(BaseModel):
    sku: str = Field(pattern=ID_PATTERN)
    location_id: str = Field(default=ONLINE, pattern=ID_PATTERN, description="a store, or ONLINE")


def _fingerprint(request: ReservationRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def reservation_view(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("reservation_id", "customer_id", "sku", "location_id", "quantity", "status", "created_at")
    view = {k: item.get(k) for k in keys}
    view["hold_until"] = item.get("hold_until")
    view["updated_at"] = item.get("updated_at")
    return view


def resolve_customer(store: StockStore, customer_id: str) -> str:
    """The surviving customer id (REDIRECT followed); NotFound when no profile exists."""
    survivor = store.survivor_of(customer_id)
    if survivor is None:
        raise NotFound(f"customer {customer_id} not found", code="customer_not_found", field="customer_id")
    return survivor


@dataclass(frozen=True)
class ReservationCaps:
    """Per-customer limits (customer self-service): active reservations, units of one SKU held."""

    active: int
    units_per_sku: int


def check_caps(active: list[dict[str, Any]], request: ReservationRequest, caps: ReservationCaps) -> None:
    """Refuse a reservation that would take the customer over a cap (422 alone, 409 with others)."""
    if request.quantity > caps.units_per_sku:
        raise Unprocessable(
            f"at most {caps.units_per_sku} units of one SKU can be reserved",
            code="units_per_sku_cap",
            field="quantity",
        )
    if len(active) >= caps.active:
        raise Conflict(
            f"at most {caps.active} reservations can be active at once", code="active_reservations_cap"
        )
    held = sum(int(r["quantity"]) for r in active if r["sku"] == request.sku)
    if held + request.quantity > caps.units_per_sku:
        raise Conflict(
            f"{held} units of {request.sku} are already reserved; at most {caps.units_per_sku}",
            code="units_per_sku_cap",
            field="quantity",
        )


def create_reservation(
    request: ReservationRequest, idempotency_key: str, caps: ReservationCaps | None = None
) -> tuple[dict[str, Any], bool]:
    """Hold stock for click and collect; (reservation, created). Replays return the original.

    With ``caps``, the customer's active reservations are read after their ``RESGUARD`` version
    and the reservation commits only if that version is unchanged: racing requests of one
    customer are serialised, so together they never exceed a cap.
    """
    settings = get_settings()
    store = stock_store(settings)
    rid = "res_" + uuid.uuid5(_RES_NS, f"{request.customer_id}:{idempotency_key}").hex
    fingerprint = _fingerprint(request)
    existing = store.get_reservation(rid)
    if existing is not None:
        return _replay(existing, fingerprint), False
    customer_id = resolve_customer(store, request.customer_id)
    now = _now()
    hold_until = now + timedelta(hours=settings.reservation_hold_hours)
    pk, sk = model.reservation_key(rid)
    item: dict[str, Any] = {
        "pk": pk,
        "sk": sk,
        "entity": model.RESERVATION_ENTITY,
        "reservation_id": rid,
        "customer_id": customer_id,
        "sku": request.sku,
        "location_id": request.location_id,
        "quantity": request.quantity,
        "status": "ready",  # in-stock click and collect: the units are on the shelf at the store
        "created_at": model.stamp(now),
        "updated_at": model.stamp(now),
        "hold_until": model.stamp(hold_until),
        "expires_at": int((hold_until + timedelta(hours=settings.reservation_ttl_grace_hours)).timestamp()),
        "fingerprint": fingerprint,
        "gsi1pk": model.reservation_due_pk(hold_until.date().isoformat()),
        "gsi1sk": f"{model.stamp(hold_until)}#{rid}",
    }
    for _ in range(CAPPED_ATTEMPTS):
        guard = None
        if caps is not None:
            guard = store.reservation_guard(customer_id)
            mine = store.customer_reservations(store.customer_ids(customer_id))
            check_caps([r for r in mine if r.get("status") in ACTIVE_STATUSES], request, caps)
        try:
            item["allocations"] = store.reserve(item, active=active_shards(store, request.sku), guard=guard)
        except Conflict as err:
            if err.code == "reservations_changed":
                continue  # another reservation of this customer committed: count again
            if err.code != "reservation_exists":
                raise
            raced = store.get_reservation(rid)
            if raced is None:
                raise TransientError("reservation raced and vanished") from err
            return _replay(raced, fingerprint), False
        evaluate_signals(store, request.sku, request.location_id)
        return item, True
    raise TransientError(f"reservations of {customer_id} kept changing; retry")


def customer_reservations(customer_id: str) -> list[dict[str, Any]]:
    """Every reservation of a customer still on record (their absorbed ids' too), newest first."""
    store = stock_store()
    survivor = resolve_customer(store, customer_id)
    return [reservation_view(i) for i in store.customer_reservations(store.customer_ids(survivor))]


def _replay(existing: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    if existing.get("fingerprint") != fingerprint:
        raise Conflict(
            "this Idempotency-Key was used for a different reservation",
            code="idempotency_key_reused",
            field="Idempotency-Key",
        )
    return existing


def get_reservation(reservation_id: str) -> dict[str, Any]:
    item = stock_store().get_reservation(reservation_id)
    if item is None:
        raise NotFound(f"reservation {reservation_id} not found", code="reservation_not_found")
    return item


def collect_reservation(reservation_id: str, caller: Principal | None = None) -> dict[str, Any]:
    """The customer picked it up: a sale (on hand and reserved both go down). Idempotent.

    ``caller``: store staff collect only at their own store (403 ``other_store``).
    """
    store = stock_store()
    item = get_reservation(reservation_id)
    require_store(caller, item["location_id"])
    if item["status"] == "collected":
        return item
    if item["status"] not in {"held", "ready"}:
        raise Conflict(f"reservation is {item['status']}", code="reservation_not_active")
    if item["hold_until"] < model.stamp(_now()):
        raise Conflict("the reservation's hold has ended", code="reservation_expired")
    if not store.settle(item, "collected"):
        return _settled_or_conflict(reservation_id, "collected")
    evaluate_signals(store, item["sku"], item["location_id"])
    return get_reservation(reservation_id)


def release_reservation(reservation_id: str, status: str = "released") -> dict[str, Any]:
    """Give the held units back (cancel by the customer or staff). Idempotent."""
    store = stock_store()
    item = get_reservation(reservation_id)
    if item["status"] in {"released", "expired"}:
        return item
    if item["status"] == "collected":
        raise Conflict("the reservation was already collected", code="reservation_collected")
    if not store.settle(item, "released" if status == "released" else "expired"):
        return _settled_or_conflict(reservation_id, "released")
    evaluate_signals(store, item["sku"], item["location_id"])
    return get_reservation(reservation_id)


def _settled_or_conflict(reservation_id: str, wanted: str) -> dict[str, Any]:
    item = get_reservation(reservation_id)
    if item["status"] == wanted or (wanted == "released" and item["status"] == "expired"):
        return item
    raise Conflict(f"reservation is {item['status']}", code="reservation_not_active")


def release_expired(now: datetime | None = None, lookback_days: int = 3) -> list[str]:
    """The scheduled job: expire every active reservation whose hold has ended."""
    store = stock_store()
    now = now or _now()
    until = model.stamp(now)
    released = []
    for days_ago in range(lookback_days, -1, -1):
        day = (now - timedelta(days=days_ago)).date().isoformat()
        for item in store.due_reservations(day, until):
            if store.settle(item, "expired"):
                released.append(item["reservation_id"])
                evaluate_signals(store, item["sku"], item["location_id"])
    return released


def flag_expiring(now: datetime | None = None) -> list[str]:
    """Mark active reservations whose hold ends within ``RESERVATION_REMINDER_HOURS`` (once each).

    The MODIFY that sets ``expiring_at`` is what a "your reservation is about to expire" message
    reacts to (the status stays held/ready).
    """
    settings = get_settings()
    store = stock_store(settings)
    now = now or _now()
    horizon = now + timedelta(hours=settings.reservation_reminder_hours)
    since, until = model.stamp(now), model.stamp(horizon)
    flagged = []
    day = now.date()
    while day <= horizon.date():
        for item in store.upcoming_reservations(day.isoformat(), since, until):
            if store.mark_expiring(item["reservation_id"], since):
                flagged.append(item["reservation_id"])
        day += timedelta(days=1)
    return flagged


def subscribe_alert(customer_id: str, request: StockAlertRequest) -> dict[str, Any]:
    """Subscribe a customer to "back in stock" of a SKU at a location (or ONLINE). Idempotent."""
    store = stock_store()
    survivor = resolve_customer(store, customer_id)
    item = {
        "pk": model.sku_pk(request.sku),
        "sk": model.alert_sk(request.location_id, survivor),
        "entity": model.ALERT_ENTITY,
        "customer_id": survivor,
        "sku": request.sku,
        "location_id": request.location_id,
        "created_at": model.stamp(_now()),
    }
    store.put_alert(item)
    return {k: v for k, v in item.items() if k not in {"pk", "sk", "entity"}}


def configure_sku(sku: str, low_stock_threshold: int | None, shards: int | None) -> dict[str, Any]:
    """Set a SKU's threshold and shard count; a new shard count rebalances every location."""
    store = stock_store()
    config = store.put_config(sku, low_stock_threshold=low_stock_threshold, shards=shards)
    rebalanced = {}
    if shards is not None:
        locations = model.group_shards(store.availability_items(sku))
        for loc in locations:
            plan = store.rebalance(sku, loc, shards)
            rebalanced[loc] = [plan[n] for n in sorted(plan)]
    return {
        "sku": sku,
        "low_stock_threshold": config.get("low_stock_threshold"),
        "shards": config.get("shards", 1),
        "rebalanced": rebalanced,
    }
