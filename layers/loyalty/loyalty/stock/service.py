"""Stock use cases: apply canonical events, reservations, availability, alerts and signals.

``StockService`` holds them, over an injected ``StockStore`` and clock, as the other capabilities'
services do. Order rules (docs/architecture.md, "Stock"):
- an order's stock is committed ONCE, by the first of ``order.placed`` / ``order.completed`` to
  reach stock (a POS sale is completed in store; a web order is placed, then paid; a chat order
  may arrive already paid). Each line is taken once, guarded by its tag on its home shard
  (no transaction); the ``STKORD#<channel>#<order_id>`` record is put after the lines and read
  first by every event: the later event of the same order finds it and changes nothing. Lines
  leave from ``location_id``.
- ``order.cancelled`` restores what the order took; a cancel that arrives first leaves a
  tombstone so the late placement is ignored (and any take an attempt of it made is given back).
- ``order.refunded`` with ``restock_location_id`` puts the returned units back there.
- ``stock.counted`` sets an absolute count, ``stock.adjusted`` applies a delta.

A queue batch is applied inside ``batch()``: the CONFIG of every SKU it names is read at once,
and the signals of every (sku, location) it touched are evaluated once, from one read, at the end.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
from loyalty.observability import logger
from loyalty.routing.router import RoutedEvent, apply_each, routed_events
from loyalty.settings import Settings, get_settings
from loyalty.stock import model
from loyalty.stock.model import ONLINE, LocationStock
from loyalty.stock.store import StockStore

_RES_NS = uuid.UUID("0b8f5d3e-7c1a-4e2b-9d6f-3a5c7e9b1d20")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
SIGNAL_RETENTION_DAYS = 30
MAX_BATCH_SKUS = 50
CAPPED_ATTEMPTS = 8

Clock = Callable[[], datetime]
Touched = set[tuple[str, str]]
StockMessage = RoutedEvent | ReservationLapsed


def _now() -> datetime:
    return datetime.now(UTC)


def online_locations(settings: Settings) -> list[str]:
    return [loc.strip() for loc in settings.online_locations.split(",") if loc.strip()]


def parse_message(body: str, kind: str | None) -> list[StockMessage]:
    """A stock-queue message's contents by its envelope ``type``: a lapsed reservation, or the
    routed events of a bundle or a lone event (in order). Malformed: raises (a ValueError)."""
    if kind == LAPSED_KIND:
        return [ReservationLapsed.model_validate_json(body)]
    return list(routed_events(body, kind))


def _skus_of(messages: list[StockMessage]) -> list[str]:
    """Every SKU the contents of one message name (each event of a bundle)."""
    skus: list[str] = []
    for message in messages:
        if isinstance(message, ReservationLapsed):
            skus.append(message.sku)
            continue
        payload = message.event.payload
        if isinstance(payload, OrderPayload | RefundPayload):
            skus.extend(line.sku for line in payload.lines)
        elif isinstance(payload, StockPayload):
            skus.append(payload.sku)
    return skus


class ReservationRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)
    customer_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(pattern=ID_PATTERN)
    quantity: int = Field(ge=1, le=100)
    location_id: str = Field(pattern=ID_PATTERN)


class StockAlertRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)
    sku: str = Field(pattern=ID_PATTERN)
    location_id: str = Field(default=ONLINE, pattern=ID_PATTERN, description="a store, or ONLINE")


@dataclass(frozen=True)
class ReservationCaps:
    """Per-customer limits (customer self-service): active reservations, units of one SKU held."""

    active: int
    units_per_sku: int


def _fingerprint(request: ReservationRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def reservation_view(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("reservation_id", "customer_id", "sku", "location_id", "quantity", "status", "created_at")
    view = {k: item.get(k) for k in keys}
    view["hold_until"] = item.get("hold_until")
    view["updated_at"] = item.get("updated_at")
    return view


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


def _replay(existing: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    if existing.get("fingerprint") != fingerprint:
        raise Conflict(
            "this Idempotency-Key was used for a different reservation",
            code="idempotency_key_reused",
            field="Idempotency-Key",
        )
    return existing


def _figures(stock: LocationStock) -> dict[str, Any]:
    return {
        "location_id": stock.location_id,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "updated_at": stock.updated_at,
        "counted_at": stock.counted_at,
    }


class StockService:
    """Stock's use cases over one store and one clock (a queue batch, a request, a job run)."""

    def __init__(
        self, store: StockStore | None = None, clock: Clock | None = None, settings: Settings | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.store = store or StockStore(move_retention_days=self.settings.stock_move_retention_days)
        self.clock: Clock = clock or _now
        self._parsed: dict[tuple[str, str | None], list[StockMessage]] = {}
        self._deferred: Touched | None = None

    def active_shards(self, sku: str) -> int:
        """How many shards take writes for this SKU (``shards`` of its CONFIG item; 1 by default)."""
        return self.store.active(sku)

    # -- events ---------------------------------------------------------------------------------
    @contextmanager
    def batch(self, messages: Iterable[tuple[str, str | None]]) -> Iterator[StockService]:
        """Apply a queue batch: every SKU's CONFIG read at once first, signals evaluated at the end.

        ``messages``: (body, envelope type) of each record. A record that does not parse is left
        for ``apply`` to refuse (its record fails alone).
        """
        skus: list[str] = []
        for body, kind in messages:
            try:
                parsed = parse_message(body, kind)
            except ValueError:
                continue
            self._parsed[(body, kind)] = parsed
            skus.extend(_skus_of(parsed))
        self.store.prefetch_configs(skus)
        self._deferred = set()
        yield self
        touched, self._deferred = self._deferred, None
        self.evaluate_signals(touched)

    def apply(self, body: str, kind: str | None = None) -> Touched:
        """Apply one stock-queue message exactly once; the (sku, location) pairs it touched.

        A bundle's events are applied in order, each exactly once; one that fails lets the others
        apply, then its error is raised (the message is redelivered whole). Signals of what was
        applied follow at once, or at the end of the batch inside ``batch()``. Malformed: raises.
        """
        parsed = self._parsed.pop((body, kind), None)
        messages = parse_message(body, kind) if parsed is None else parsed
        touched: Touched = set()

        def one(message: StockMessage) -> None:
            touched.update(self._apply_one(message))

        error = apply_each(messages, one)
        if self._deferred is None:
            self.evaluate_signals(touched)
        else:
            self._deferred |= touched
        if error is not None:
            raise error
        return touched

    def _apply_one(self, message: StockMessage) -> Touched:
        if isinstance(message, ReservationLapsed):
            released = self.store.release_removed(message.to_item())
            return {(message.sku, message.location_id)} if released else set()
        return self.apply_event(message.event)

    def apply_event(self, event: ChannelEvent) -> Touched:
        """Apply a canonical event's stock effect exactly once; the (sku, location) pairs touched."""
        payload = event.payload
        at = model.stamp(event.occurred_at)
        match event.type, payload:
            case EventType.ORDER_PLACED | EventType.ORDER_COMPLETED, OrderPayload():
                return self.commit_order(event, payload)
            case EventType.ORDER_CANCELLED, CancelPayload():
                return self.cancel_order(event, payload)
            case EventType.ORDER_REFUNDED, RefundPayload() if payload.restock_location_id:
                loc = payload.restock_location_id
                for line in payload.lines:
                    self._move(
                        line.sku, loc, line.quantity, at, f"refund:{event.event_id}:{line.line_id}", "return"
                    )
                return {(line.sku, loc) for line in payload.lines}
            case EventType.STOCK_COUNTED, StockPayload():
                counted_at = model.stamp(payload.counted_at or event.occurred_at)
                self.store.count(
                    payload.sku,
                    payload.location_id,
                    payload.quantity,
                    at=counted_at,
                    key=f"count:{event.event_id}",
                    active=self.active_shards(payload.sku),
                )
                return {(payload.sku, payload.location_id)}
            case EventType.STOCK_ADJUSTED, StockPayload():
                reason = payload.reason or "adjustment"
                self._move(
                    payload.sku, payload.location_id, payload.quantity, at, f"adj:{event.event_id}", reason
                )
                return {(payload.sku, payload.location_id)}
        return set()

    def _move(self, sku: str, location_id: str, quantity: int, at: str, key: str, reason: str) -> None:
        self.store.move(
            sku, location_id, quantity, at=at, key=key, reason=reason, active=self.active_shards(sku)
        )

    def commit_order(self, event: ChannelEvent, order: OrderPayload) -> Touched:
        """Take an order's lines at its location, once per order (whichever event comes first).

        The order's record is read first (a redelivery or the order's other event stops there);
        each line is then one plain take guarded by its tag on its home shard, and the record is
        put last, listing the takes it accounts for. A record put first by another event or a
        cancel leaves our takes it does not list to be undone (docs/architecture.md, "Stock:
        takes without a transaction").
        """
        channel = event.channel.value
        pk, sk = model.order_key(channel, order.order_id)
        record: dict[str, Any] = {
            "pk": pk,
            "sk": sk,
            "entity": model.ORDER_ENTITY,
            "channel": channel,
            "order_id": order.order_id,
            "status": "committed",
            "event_id": event.event_id,
            "at": model.stamp(event.occurred_at),
            "location_id": order.location_id,
            "fulfilment": order.fulfilment,
            "lines": [{"line_id": li.line_id, "sku": li.sku, "quantity": li.quantity} for li in order.lines],
        }
        touched = {(line.sku, order.location_id) for line in order.lines}
        existing = self.store.get_order(channel, order.order_id)
        if existing is not None:
            return self._known_order(existing, record, touched)
        takes = {line["line_id"]: (line, self.store.take_line(record, line)) for line in record["lines"]}
        for line, take in takes.values():
            if take.short:
                self.store.put_shortfall(record, line, take)
        record["taken"] = {lid: take.units for lid, (_, take) in takes.items()}
        record["shortfall"] = {lid: take.short for lid, (_, take) in takes.items() if take.short}
        record["entries"] = [take.entry() for _, take in takes.values()]
        if self.store.open_order(record):
            return touched
        existing = self.store.get_order(channel, order.order_id)
        if existing is None:
            raise TransientError(f"order {order.order_id} record vanished")
        mine = [(line["sku"], take) for line, take in takes.values()]
        self._undo_unlisted(existing, mine, order.location_id)
        return touched

    def _known_order(self, existing: dict[str, Any], record: dict[str, Any], touched: Touched) -> Touched:
        """An order event that finds the order's record: a redelivery, its other event, or a cancel
        that came first (then any take an attempt of this order made is given back)."""
        mine = existing["event_id"] == record["event_id"]
        if existing["status"] == "committing":  # left by an earlier version: resume it
            return self._resume_per_line(existing) if mine else set()
        if existing["status"] == "cancelled" and not mine:
            found = self.store.order_takes(record, record["lines"])
            return touched if self._undo_unlisted(existing, found, record["location_id"]) else set()
        return touched if mine else set()  # a redelivery: nothing to take, its signals evaluated again

    def _undo_unlisted(
        self, existing: dict[str, Any], takes: list[tuple[str, model.Take]], location_id: str
    ) -> bool:
        """Give back the takes the order's record does not list (each once); whether any was."""
        listed = set(existing.get("entries") or ())
        undone = [(sku, t) for sku, t in takes if t.entry() not in listed and t.units]
        for sku, take in undone:
            self.store.undo_take(sku, location_id, take)
        if undone:
            logger.info(
                "order takes given back",
                extra={"order_id": existing["order_id"], "status": existing["status"], "takes": len(undone)},
            )
        return bool(undone)

    def _resume_per_line(self, record: dict[str, Any]) -> Touched:
        """A ``committing`` record left by an earlier version (orders too large for its one
        transaction): each line with its own applied-once ``MOVE#`` marker, then ``committed``."""
        channel, order_id = record["channel"], record["order_id"]
        taken: dict[str, int] = {}
        shortfall: dict[str, int] = {}
        loc = record["location_id"]
        for line in record["lines"]:
            applied = self.store.move(
                line["sku"],
                loc,
                -int(line["quantity"]),
                at=record["at"],
                key=f"ord:{channel}:{order_id}:{line['line_id']}",
                reason=f"order_{record['fulfilment']}",
                active=self.active_shards(line["sku"]),
            )
            taken[line["line_id"]] = -applied.on_hand_delta
            if applied.shortfall:
                shortfall[line["line_id"]] = applied.shortfall
        self.store.close_order(channel, order_id, "committed", "committing", taken=taken, shortfall=shortfall)
        return {(line["sku"], loc) for line in record["lines"]}

    def cancel_order(self, event: ChannelEvent, cancel: CancelPayload) -> Touched:
        """Put back what an order took; a cancel arriving first leaves a tombstone."""
        channel = event.channel.value
        existing = self.store.get_order(channel, cancel.order_id)
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
            if self.store.open_order(tombstone):
                return set()
            existing = self.store.get_order(channel, cancel.order_id)
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
                key = f"cancel:{channel}:{cancel.order_id}:{line['line_id']}"
                self._move(line["sku"], loc, units, at, key, "order_cancelled")
        self.store.close_order(
            channel, cancel.order_id, "cancelled", "committed", cancelled_by=event.event_id
        )
        return {(line["sku"], loc) for line in existing["lines"]}

    # -- signals --------------------------------------------------------------------------------
    def evaluate_signals(self, touched: Iterable[tuple[str, str]]) -> list[str]:
        """Emit out_of_stock / back_in_stock / low_stock where a location (or ONLINE) changed state.

        Every figure needed (the touched locations, and the online ones of a SKU touched online)
        comes from one read (``StockStore.locations``).
        """
        pairs = sorted(set(touched))
        if not pairs:
            return []
        online = online_locations(self.settings)
        online_skus = sorted({sku for sku, loc in pairs if loc in online})
        needed = [*pairs, *((sku, loc) for sku in online_skus for loc in online)]
        states = self.store.locations(needed, signal_only=[(sku, ONLINE) for sku in online_skus])
        emitted = []
        for sku, loc in pairs:
            state = states[(sku, loc)]
            if signal := self._move_state(sku, loc, state.available, state.signal):
                emitted.append(signal)
        for sku in online_skus:
            total = sum(states[(sku, loc)].available for loc in online)
            if signal := self._move_state(sku, ONLINE, total, states[(sku, ONLINE)].signal):
                emitted.append(f"{ONLINE}:{signal}")
        return emitted

    def _move_state(
        self, sku: str, location_id: str, available: int, previous: model.SignalState | None
    ) -> str | None:
        threshold = int(self.store.config(sku).get("low_stock_threshold", self.settings.low_stock_threshold))
        state = model.signal_state(available, threshold)
        if state == previous or (previous is None and state == "in_stock"):
            return None
        signal = model.transition(previous, state)
        item = None
        if signal is not None:
            now = self.clock()
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
        if self.store.set_signal_state(sku, location_id, previous, state, item) and signal:
            return signal
        return None

    # -- availability -------------------------------------------------------------------------
    def availability(self, sku: str) -> dict[str, Any]:
        """Per location and total, with freshness: ONE query of the SKU collection."""
        items = self.store.availability_items(sku)
        by_location = model.group_shards(items)
        if not by_location:
            raise NotFound(f"no stock is known for {sku}", code="sku_not_found", field="sku")
        config: dict[str, Any] = next((i for i in items if i["sk"] == model.CONFIG_SK), {})
        locations = [LocationStock.of(loc, shards) for loc, shards in sorted(by_location.items())]
        online = set(online_locations(self.settings))
        online_stock = [s for s in locations if s.location_id in online]
        stamps = [s.updated_at for s in locations if s.updated_at]
        return {
            "sku": sku,
            "available": sum(s.available for s in locations),
            "on_hand": sum(s.on_hand for s in locations),
            "reserved": sum(s.reserved for s in locations),
            "online_available": sum(s.available for s in online_stock),
            "updated_at": max(stamps) if stamps else None,
            "low_stock_threshold": config.get("low_stock_threshold", self.settings.low_stock_threshold),
            "locations": [_figures(s) for s in locations],
        }

    def batch_availability(self, skus: list[str], location_id: str | None) -> list[dict[str, Any]]:
        """Availability of many SKUs (one query each, in parallel), at one location or in total."""
        store = self.store

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

    # -- reservations -------------------------------------------------------------------------
    def resolve_customer(self, customer_id: str) -> str:
        """The surviving customer id (REDIRECT followed); NotFound when no profile exists."""
        survivor = self.store.survivor_of(customer_id)
        if survivor is None:
            raise NotFound(
                f"customer {customer_id} not found", code="customer_not_found", field="customer_id"
            )
        return survivor

    def create_reservation(
        self, request: ReservationRequest, idempotency_key: str, caps: ReservationCaps | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Hold stock for click and collect; (reservation, created). Replays return the original.

        With ``caps``, the customer's active reservations are read after their ``RESGUARD`` version
        and the reservation commits only if that version is unchanged: racing requests of one
        customer are serialised, so together they never exceed a cap.
        """
        settings, store = self.settings, self.store
        rid = "res_" + uuid.uuid5(_RES_NS, f"{request.customer_id}:{idempotency_key}").hex
        fingerprint = _fingerprint(request)
        existing = store.get_reservation(rid)
        if existing is not None:
            return _replay(existing, fingerprint), False
        customer_id = self.resolve_customer(request.customer_id)
        now = self.clock()
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
            "expires_at": int(
                (hold_until + timedelta(hours=settings.reservation_ttl_grace_hours)).timestamp()
            ),
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
                item["allocations"] = store.reserve(item, active=self.active_shards(request.sku), guard=guard)
            except Conflict as err:
                if err.code == "reservations_changed":
                    continue  # another reservation of this customer committed: count again
                if err.code != "reservation_exists":
                    raise
                raced = store.get_reservation(rid)
                if raced is None:
                    raise TransientError("reservation raced and vanished") from err
                return _replay(raced, fingerprint), False
            self.evaluate_signals([(request.sku, request.location_id)])
            return item, True
        raise TransientError(f"reservations of {customer_id} kept changing; retry")

    def customer_reservations(self, customer_id: str) -> list[dict[str, Any]]:
        """Every reservation of a customer still on record (their absorbed ids' too), newest first."""
        store = self.store
        survivor = self.resolve_customer(customer_id)
        return [reservation_view(i) for i in store.customer_reservations(store.customer_ids(survivor))]

    def get_reservation(self, reservation_id: str) -> dict[str, Any]:
        item = self.store.get_reservation(reservation_id)
        if item is None:
            raise NotFound(f"reservation {reservation_id} not found", code="reservation_not_found")
        return item

    def collect_reservation(self, reservation_id: str, caller: Principal | None = None) -> dict[str, Any]:
        """The customer picked it up: a sale (on hand and reserved both go down). Idempotent.

        ``caller``: store staff collect only at their own store (403 ``other_store``).
        """
        store = self.store
        item = self.get_reservation(reservation_id)
        require_store(caller, item["location_id"])
        if item["status"] == "collected":
            return item
        if item["status"] not in {"held", "ready"}:
            raise Conflict(f"reservation is {item['status']}", code="reservation_not_active")
        if item["hold_until"] < model.stamp(self.clock()):
            raise Conflict("the reservation's hold has ended", code="reservation_expired")
        if not store.settle(item, "collected"):
            return self._settled_or_conflict(reservation_id, "collected")
        self.evaluate_signals([(item["sku"], item["location_id"])])
        return self.get_reservation(reservation_id)

    def release_reservation(self, reservation_id: str, status: str = "released") -> dict[str, Any]:
        """Give the held units back (cancel by the customer or staff). Idempotent."""
        store = self.store
        item = self.get_reservation(reservation_id)
        if item["status"] in {"released", "expired"}:
            return item
        if item["status"] == "collected":
            raise Conflict("the reservation was already collected", code="reservation_collected")
        if not store.settle(item, "released" if status == "released" else "expired"):
            return self._settled_or_conflict(reservation_id, "released")
        self.evaluate_signals([(item["sku"], item["location_id"])])
        return self.get_reservation(reservation_id)

    def _settled_or_conflict(self, reservation_id: str, wanted: str) -> dict[str, Any]:
        item = self.get_reservation(reservation_id)
        if item["status"] == wanted or (wanted == "released" and item["status"] == "expired"):
            return item
        raise Conflict(f"reservation is {item['status']}", code="reservation_not_active")

    def release_expired(self, now: datetime | None = None, lookback_days: int = 3) -> list[str]:
        """The scheduled job: expire every active reservation whose hold has ended."""
        store = self.store
        now = now or self.clock()
        until = model.stamp(now)
        released = []
        for days_ago in range(lookback_days, -1, -1):
            day = (now - timedelta(days=days_ago)).date().isoformat()
            for item in store.due_reservations(day, until):
                if store.settle(item, "expired"):
                    released.append(item["reservation_id"])
                    self.evaluate_signals([(item["sku"], item["location_id"])])
        return released

    def sweep_reservations(self) -> tuple[list[str], list[str]]:
        """The scheduled job: expire the reservations whose hold ended, flag those about to end."""
        return self.release_expired(), self.flag_expiring()

    def flag_expiring(self, now: datetime | None = None) -> list[str]:
        """Mark active reservations whose hold ends within ``RESERVATION_REMINDER_HOURS`` (once each).

        The MODIFY that sets ``expiring_at`` is what a "your reservation is about to expire" message
        reacts to (the status stays held/ready).
        """
        settings, store = self.settings, self.store
        now = now or self.clock()
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

    def subscribe_alert(self, customer_id: str, request: StockAlertRequest) -> dict[str, Any]:
        """Subscribe a customer to "back in stock" of a SKU at a location (or ONLINE). Idempotent."""
        store = self.store
        survivor = self.resolve_customer(customer_id)
        item = {
            "pk": model.sku_pk(request.sku),
            "sk": model.alert_sk(request.location_id, survivor),
            "entity": model.ALERT_ENTITY,
            "customer_id": survivor,
            "sku": request.sku,
            "location_id": request.location_id,
            "created_at": model.stamp(self.clock()),
        }
        store.put_alert(item)
        return {k: v for k, v in item.items() if k not in {"pk", "sk", "entity"}}

    def configure_sku(self, sku: str, low_stock_threshold: int | None, shards: int | None) -> dict[str, Any]:
        """Set a SKU's threshold and shard count; a new shard count rebalances every location."""
        store = self.store
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
