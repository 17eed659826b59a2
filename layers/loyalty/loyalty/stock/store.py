"""Stock items in the single table: conditional, exactly-once writes (see loyalty.stock.model).

Every change of a shard but an order's take is one transaction holding (a) an applied-once marker
put only if new (a ``stock_move`` item keyed by the business fact for returns, adjustments and
counts, or the reservation item itself) and (b) the shard update(s) with their conditions:
``available >= n`` to take, ``reserved >= n`` to release or collect, and, for on-hand deltas,
``counted_at < the fact's time`` (a fact stamped before the last absolute count is already inside
that count). A redelivered fact fails (a) and is a no-op.

An order's line is taken WITHOUT a transaction (``take_line``): one conditional UpdateItem of the
line's home shard, refused while the line's tag is in the shard's ``takes`` (see
``model.Take``); the order's record is put after its lines and lists the takes it accounts for.
The takes are journaled on the shard (``journal``, flushed to ``JRN#`` pages when full), so a late
count still finds every on-hand delta after its time.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from loyalty import customers
from loyalty.errors import Conflict, TransientError
from loyalty.retry import Again, retry
from loyalty.stock import model
from loyalty.stock.model import Shard
from loyalty.store.table import (
    Item,
    Table,
    TransactionCancelled,
    tx_put,
    tx_put_new,
    tx_update,
)

Mode = Literal["sell", "reserve", "release", "collect", "receive"]
ATTEMPTS = 6
FAST_TRIES = 2
_NAMES = {
    "#oh": "on_hand",
    "#rs": "reserved",
    "#av": "available",
    "#up": "updated_at",
    "#en": "entity",
    "#sku": "sku",
    "#loc": "location_id",
    "#sh": "shard",
    "#ver": "version",
}
_JOURNAL_NAMES = {"#jr": "journal", "#tk": "takes"}
_CCF = "ConditionalCheckFailed"


def _now() -> datetime:
    return datetime.now(UTC)


def _deltas(mode: Mode, quantity: int) -> tuple[int, int]:
    """(on hand delta, reserved delta) of taking/returning ``quantity`` units in ``mode``."""
    return {
        "sell": (-quantity, 0),
        "receive": (quantity, 0),
        "reserve": (0, quantity),
        "release": (0, -quantity),
        "collect": (-quantity, -quantity),
    }[mode]


def shard_update(
    sku: str,
    location_id: str,
    shard: int,
    mode: Mode,
    quantity: int,
    *,
    before: str | None = None,
) -> dict[str, Any]:
    """The conditional update of one shard for ``quantity`` units in ``mode``."""
    d_on_hand, d_reserved = _deltas(mode, quantity)
    values: dict[str, Any] = {
        ":z": 0,
        ":one": 1,
        ":dh": d_on_hand,
        ":dr": d_reserved,
        ":da": d_on_hand - d_reserved,
        ":now": model.stamp(_now()),
        ":en": model.STOCK_ENTITY,
        ":sku": sku,
        ":loc": location_id,
        ":sh": shard,
    }
    expression = (
        "SET #oh = if_not_exists(#oh, :z) + :dh, #rs = if_not_exists(#rs, :z) + :dr, "
        "#av = if_not_exists(#av, :z) + :da, #up = :now, #en = :en, #sku = :sku, #loc = :loc, #sh = :sh "
        "ADD #ver :one"
    )
    names = dict(_NAMES)
    conditions = []
    if mode in {"sell", "reserve"}:
        conditions.append("#av >= :q")
        values[":q"] = quantity
    if mode in {"release", "collect"}:
        conditions.append("#rs >= :q")
        values[":q"] = quantity
    if before is not None:
        names["#ct"] = "counted_at"
        conditions.append("(attribute_not_exists(#ct) OR #ct < :at)")
        values[":at"] = before
    return tx_update(
        model.sku_pk(sku),
        model.shard_sk(location_id, shard),
        expression,
        " AND ".join(conditions) or None,
        names,
        values,
    )


@dataclass(frozen=True)
class LocationState:
    """What the signals of a location are computed from: its available units and last state."""

    available: int
    signal: model.SignalState | None

    @classmethod
    def of(cls, items: list[Item], location_id: str) -> LocationState:
        shards = model.group_shards(items).get(location_id, [])
        meta = next((i for i in items if i["sk"] == model.meta_sk(location_id)), {})
        return cls(sum(s.available for s in shards), meta.get("signal"))


@dataclass(frozen=True)
class Applied:
    """Outcome of one on-hand movement: units applied, units missing, and how it went."""

    on_hand_delta: int
    shortfall: int = 0
    duplicate: bool = False
    absorbed: bool = False


class StockStore:
    """Reads and exactly-once writes of the ``SKU#<sku>`` collection and reservations."""

    def __init__(self, table: Table | None = None, *, move_retention_days: int = 40) -> None:
        self.table = table or Table()
        self.move_retention_days = move_retention_days
        self._configs: dict[str, Item] = {}  # per instance: one message or one request

    # -- reads ------------------------------------------------------------------------------------
    def shards(self, sku: str, location_id: str) -> list[Shard]:
        """Every shard of one location (one consistent query)."""
        items = self.table.query_all(
            model.sku_pk(sku), sk_prefix=model.location_prefix(location_id), consistent=True
        )
        return model.group_shards(list(items)).get(location_id, [])

    def location_items(self, sku: str, location_id: str) -> list[Item]:
        return list(
            self.table.query_all(
                model.sku_pk(sku), sk_prefix=model.location_prefix(location_id), consistent=True
            )
        )

    def availability_items(self, sku: str) -> list[Item]:
        """CONFIG and every LOC# item of a SKU: ONE query (sk BETWEEN CONFIG and LOC$)."""
        return list(self.table.query_all(model.sku_pk(sku), sk_between=model.AVAILABILITY_RANGE))

    def config(self, sku: str) -> Item:
        """A SKU's CONFIG item (read once per store instance, i.e. per message or request)."""
        if sku not in self._configs:
            self._configs[sku] = self.table.get(model.sku_pk(sku), model.CONFIG_SK, consistent=False) or {}
        return self._configs[sku]

    def prefetch_configs(self, skus: Iterable[str]) -> None:
        """Read the CONFIG items of many SKUs at once (one BatchGetItem per 100), eventually
        consistent like ``config``: a CONFIG is held for a whole queue batch anyway, so a replica a
        moment behind only moves the batch's view back by that moment (docs/architecture.md,
        "Reads a conditional write guards")."""
        wanted = [sku for sku in dict.fromkeys(skus) if sku not in self._configs]
        keys = [(model.sku_pk(s), model.CONFIG_SK) for s in wanted]
        found = {i["sku"]: i for i in (self.table.batch_get(keys, consistent=False) if keys else [])}
        for sku in wanted:
            self._configs[sku] = found.get(sku, {})

    def locations(
        self, pairs: Iterable[tuple[str, str]], signal_only: Iterable[tuple[str, str]] = ()
    ) -> dict[tuple[str, str], LocationState]:
        """Available units and signal state of many (sku, location): one BatchGetItem for the SKUs
        never sharded (their one shard and META by key), one query per location of the others.
        ``signal_only``: (sku, location) whose META alone is wanted (the ``ONLINE`` sum of a SKU,
        which has no shard of its own: its available units are left at 0)."""
        wanted = list(dict.fromkeys(pairs))
        metas = [p for p in dict.fromkeys(signal_only) if p not in wanted]
        self.prefetch_configs(sku for sku, _ in wanted)
        keyed = [(sku, loc) for sku, loc in wanted if "shards" not in self.config(sku)]
        keys = [
            (model.sku_pk(sku), sk)
            for sku, loc in keyed
            for sk in (model.shard_sk(loc, 0), model.meta_sk(loc))
        ]
        keys += [(model.sku_pk(sku), model.meta_sk(loc)) for sku, loc in metas]
        by_key = {(i["pk"], i["sk"]): i for i in (self.table.batch_get(keys) if keys else [])}
        out = {}
        for sku, loc in [*wanted, *metas]:
            if (sku, loc) in metas:
                items = [i for i in (by_key.get((model.sku_pk(sku), model.meta_sk(loc))),) if i]
            elif (sku, loc) in keyed:
                items = [
                    by_key[k]
                    for k in (
                        (model.sku_pk(sku), model.shard_sk(loc, 0)),
                        (model.sku_pk(sku), model.meta_sk(loc)),
                    )
                    if k in by_key
                ]
            else:
                items = self.location_items(sku, loc)
            out[(sku, loc)] = LocationState.of(items, loc)
        return out

    def put_config(self, sku: str, *, low_stock_threshold: int | None, shards: int | None) -> Item:
        """Set a SKU's data (threshold, shard count); unspecified fields keep their value."""
        sets = ["#en = :en", "#sku = :sku", "#up = :now"]
        names = {"#en": "entity", "#sku": "sku", "#up": "updated_at"}
        values: dict[str, Any] = {":en": model.CONFIG_ENTITY, ":sku": sku, ":now": model.stamp(_now())}
        if low_stock_threshold is not None:
            sets.append("#th = :th")
            names["#th"] = "low_stock_threshold"
            values[":th"] = low_stock_threshold
        if shards is not None:
            sets.append("#n = :n")
            names["#n"] = "shards"
            values[":n"] = shards
        config = self.table.update(
            model.sku_pk(sku), model.CONFIG_SK, "SET " + ", ".join(sets), names=names, values=values
        )
        self._configs[sku] = config
        return config

    def moves_after(self, sku: str, location_id: str, at: str, shards: list[Shard]) -> int:
        """Sum of on-hand deltas applied at this location for facts stamped strictly after ``at``.

        Order takes are in the journals of ``shards`` (as read) and in the flushed ``JRN#`` pages
        whose newest fact is after ``at``; every other fact has its ``MOVE#`` marker.
        """
        pk = model.sku_pk(sku)
        moves = self.table.query_all(
            pk, sk_between=(f"MOVE#{location_id}#{at}$", f"MOVE#{location_id}$"), consistent=True
        )
        pages = self.table.query_all(
            pk, sk_between=(model.journal_prefix(location_id) + at, f"JRN#{location_id}$"), consistent=True
        )
        entries = [e for page in pages for e in page.get("entries") or ()]
        entries += [e for s in shards for e in s.journal]
        return sum(int(i.get("on_hand_delta", 0)) for i in moves) + model.journal_after(entries, at)

    # -- markers --------------------------------------------------------------------------------
    def _move_item(
        self, sku: str, location_id: str, at: str, key: str, on_hand_delta: int, reason: str, **extra: Any
    ) -> Item:
        expires = _now() + timedelta(days=self.move_retention_days)
        return {
            "pk": model.sku_pk(sku),
            "sk": model.move_sk(location_id, at, key),
            "entity": model.MOVE_ENTITY,
            "sku": sku,
            "location_id": location_id,
            "at": at,
            "key": key,
            "on_hand_delta": on_hand_delta,
            "reason": reason,
            "applied_at": model.stamp(_now()),
            "expires_at": int(expires.timestamp()),
            **extra,
        }

    def _shortfall_item(self, sku: str, location_id: str, at: str, key: str, units: int, reason: str) -> Item:
        return {
            "pk": model.sku_pk(sku),
            "sk": model.shortfall_sk(location_id, at, key),
            "entity": model.SHORTFALL_ENTITY,
            "sku": sku,
            "location_id": location_id,
            "units": units,
            "reason": reason,
            "at": at,
            "key": key,
        }

    def _existing_move(self, sku: str, location_id: str, at: str, key: str) -> Applied:
        item = self.table.get(model.sku_pk(sku), model.move_sk(location_id, at, key)) or {}
        return Applied(int(item.get("on_hand_delta", 0)), int(item.get("shortfall", 0)), duplicate=True)

    # -- on-hand movements (events) -----------------------------------------------------------------
    def move(
        self, sku: str, location_id: str, quantity: int, *, at: str, key: str, reason: str, active: int = 1
    ) -> Applied:
        """Apply a signed on-hand delta once: receipts/returns add, sales take (never below zero).

        A take for more than is available takes what there is and records the rest as a
        shortfall (a backorder for staff), in the same transaction.
        """
        if quantity == 0:
            return Applied(0)
        mode: Mode = "receive" if quantity > 0 else "sell"
        units = abs(quantity)
        for shard in _fast_order(active):
            marker = self._move_item(sku, location_id, at, key, _deltas(mode, units)[0], reason)
            try:
                self.table.transact(
                    [tx_put_new(marker), shard_update(sku, location_id, shard, mode, units, before=at)]
                )
            except TransactionCancelled as err:
                if err.reasons[0] == _CCF:
                    return self._existing_move(sku, location_id, at, key)
                continue
            return Applied(marker["on_hand_delta"])

        def attempt(_: int) -> Applied:
            shards = self.shards(sku, location_id)
            counted = max((s.counted_at for s in shards if s.counted_at), default=None)
            if counted is not None and counted >= at:
                marker = self._move_item(sku, location_id, at, key, 0, reason, absorbed_by_count=counted)
                if not self.table.put_new(marker):
                    return self._existing_move(sku, location_id, at, key)
                return Applied(0, absorbed=True)
            if mode == "receive":
                plan = {secrets.randbelow(active): units}
            else:
                plan = model.plan_take(shards, units, partial=True)
            taken = sum(plan.values())
            missing = units - taken
            delta = taken if mode == "receive" else -taken
            marker = self._move_item(sku, location_id, at, key, delta, reason, shortfall=missing)
            actions = [tx_put_new(marker)]
            actions += [shard_update(sku, location_id, n, mode, q, before=at) for n, q in plan.items()]
            if missing:
                actions.append(tx_put(self._shortfall_item(sku, location_id, at, key, missing, reason)))
            try:
                self.table.transact(actions)
            except TransactionCancelled as err:
                if err.reasons[0] == _CCF:
                    return self._existing_move(sku, location_id, at, key)
                raise Again from None  # a shard moved under us (or a count landed): read again
            return Applied(delta, shortfall=missing)

        return retry(attempt, attempts=ATTEMPTS, what=f"stock of {sku} at {location_id}")

    def count(
        self, sku: str, location_id: str, quantity: int, *, at: str, key: str, active: int = 1
    ) -> Applied:
        """Apply an absolute count taken at ``at``, once; an older count than the last is ignored.

        New on hand = counted quantity + on-hand deltas already applied for facts stamped after
        ``at`` (they happened after the count, so the count cannot contain them). Every shard is
        written with a ``version`` condition, so a movement racing the count makes it re-read.
        """

        def attempt(_: int) -> Applied:
            shards = self.shards(sku, location_id)
            counted = max((s.counted_at for s in shards if s.counted_at), default=None)
            if counted is not None and counted >= at:
                marker = self._move_item(sku, location_id, at, key, 0, "stale_count", counted=quantity)
                if not self.table.put_new(marker):
                    return self._existing_move(sku, location_id, at, key)
                return Applied(0, absorbed=True)
            target = quantity + self.moves_after(sku, location_id, at, shards)
            plan = model.plan_count(shards, target, active)
            before = sum(s.on_hand for s in shards)
            delta = sum(plan.on_hand.values()) - before
            marker = self._move_item(
                sku, location_id, at, key, 0, "count", counted=quantity, adjusted_by=delta
            )
            actions = [tx_put_new(marker)]
            journals = {s.shard: self._counted_journal(sku, s, at) for s in shards}
            actions += self._rewrite(sku, location_id, shards, plan.on_hand, journals, counted_at=at)
            if plan.shortfall:
                actions.append(
                    tx_put(
                        self._shortfall_item(
                            sku, location_id, at, key, plan.shortfall, "count_below_reserved"
                        )
                    )
                )
            try:
                self.table.transact(actions)
            except TransactionCancelled as err:
                if err.reasons[0] == _CCF:
                    return self._existing_move(sku, location_id, at, key)
                raise Again from None
            return Applied(delta, shortfall=plan.shortfall)

        return retry(attempt, attempts=ATTEMPTS, what=f"stock of {sku} at {location_id}")

    def _rewrite(
        self,
        sku: str,
        location_id: str,
        shards: list[Shard],
        on_hand: dict[int, int],
        journals: dict[int, list[str]],
        *,
        counted_at: str | None = None,
    ) -> list[dict[str, Any]]:
        """Set each shard's on hand (reserved kept) and journal, guarded by the version read."""
        by_id = {s.shard: s for s in shards}
        now = model.stamp(_now())
        actions = []
        for n, units in on_hand.items():
            old = by_id.get(n)
            reserved = old.reserved if old else 0
            journal = journals.get(n, [])
            if old and old.on_hand == units and counted_at is None and journal == list(old.journal):
                continue
            tags = {t.tag for t in map(model.Take.parse, journal) if t is not None}
            item: Item = {
                "pk": model.sku_pk(sku),
                "sk": model.shard_sk(location_id, n),
                "entity": model.STOCK_ENTITY,
                "sku": sku,
                "location_id": location_id,
                "shard": n,
                "on_hand": units,
                "reserved": reserved,
                "available": units - reserved,
                "updated_at": now,
                "version": (old.version if old else 0) + 1,
                "counted_at": counted_at or (old.counted_at if old else None),
                "journal": journal or None,
                "takes": tags or None,
            }
            if old:
                actions.append(tx_put(item, "#ver = :v", {"#ver": "version"}, {":v": old.version}))
            else:
                actions.append(tx_put_new(item))
        return actions

    def _counted_journal(self, sku: str, shard: Shard, counted_at: str) -> list[str]:
        """What a counted shard keeps of its journal: the takes after the count's time (a later
        count needs them), and those not settled (their order is being taken)."""
        leaving = self._settled(sku, shard.location_id, [e for e in shard.journal if e[:27] <= counted_at])
        return [e for e in shard.journal if e not in leaving]

    def _rehomed(self, sku: str, location_id: str, shards: list[Shard], active: int) -> dict[int, list[str]]:
        """Each shard's journal after a rebalance to ``active`` shards: a take whose order has no
        record yet moves (with its tag) to its line's home under the new count, where the order's
        next attempt looks first; every other entry stays where it is."""
        settled = self._settled(sku, location_id, [e for s in shards for e in s.journal])
        out: dict[int, list[str]] = {n: [] for n in range(active)}
        for shard in shards:
            for entry in shard.journal:
                take = model.Take.parse(entry)
                home = shard.shard if take is None or entry in settled else take.home(active)
                out.setdefault(home, []).append(entry)
        return out

    def rebalance(self, sku: str, location_id: str, active: int) -> dict[int, int]:
        """Spread a location's available units evenly over its first ``active`` shards."""

        def attempt(_: int) -> dict[int, int]:
            shards = self.shards(sku, location_id)
            total = sum(s.on_hand for s in shards)
            plan = model.plan_count(shards, total, active)
            journals = self._rehomed(sku, location_id, shards, active)
            actions = self._rewrite(sku, location_id, shards, plan.on_hand, journals)
            if not actions:
                return plan.on_hand
            try:
                self.table.transact(actions)
            except TransactionCancelled:
                raise Again from None
            return plan.on_hand

        return retry(attempt, attempts=ATTEMPTS, what=f"stock of {sku} at {location_id}")

    # -- reservations ---------------------------------------------------------------------------
    def reserve(self, reservation: Item, *, active: int = 1, guard: int | None = None) -> dict[str, int]:
        """Put ``reservation`` (new) and hold its units on the shards; its ``allocations`` returned.

        The same transaction puts the reservation's pointer in its customer's collection (the
        "reservations of a customer" query). With ``guard`` (the version of the customer's
        ``RESGUARD`` read before the caps were checked) it also moves that version on, so two
        capped reservations of one customer never both commit on the same reading.

        Raises Conflict ``reservation_exists`` when the id exists, ``insufficient_stock`` when the
        location does not have the quantity available, ``reservations_changed`` when another
        guarded reservation of the customer committed since ``guard`` was read.
        """
        sku, location_id, units = reservation["sku"], reservation["location_id"], reservation["quantity"]
        extra = [tx_put(self._customer_pointer(reservation))]
        if guard is not None:
            extra.append(self._guard_update(reservation["customer_id"], guard))
        for shard in _fast_order(active):
            allocations = {str(shard): units}
            if self._try_reserve(reservation, allocations, extra):
                return allocations

        def attempt(_: int) -> dict[str, int]:
            plan = model.plan_take(self.shards(sku, location_id), units, partial=False)
            if not plan:
                raise Conflict(
                    f"only fewer than {units} units of {sku} are available at {location_id}",
                    code="insufficient_stock",
                    field="quantity",
                )
            allocations = {str(n): q for n, q in plan.items()}
            if self._try_reserve(reservation, allocations, extra):
                return allocations
            raise Again

        return retry(attempt, attempts=ATTEMPTS, what=f"stock of {sku} at {location_id}")

    def _try_reserve(
        self, reservation: Item, allocations: dict[str, int], extra: list[dict[str, Any]]
    ) -> bool:
        """One reserve transaction; False when a shard condition failed (plan again)."""
        sku, location_id = reservation["sku"], reservation["location_id"]
        actions = [tx_put_new({**reservation, "allocations": allocations}), *extra]
        actions += [shard_update(sku, location_id, int(n), "reserve", q) for n, q in allocations.items()]
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            if err.reasons[0] == _CCF:
                raise Conflict("reservation exists", code="reservation_exists") from err
            if any(r == _CCF for r in err.reasons[1 : len(extra) + 1]):
                raise Conflict("the customer's reservations changed", code="reservations_changed") from err
            return False
        return True

    def _customer_pointer(self, reservation: Item) -> Item:
        pk, sk = model.customer_reservation_key(reservation["customer_id"], reservation["reservation_id"])
        keep = ("reservation_id", "customer_id", "sku", "location_id", "created_at", "expires_at")
        return {"pk": pk, "sk": sk, "entity": model.CUSTOMER_RESERVATION_ENTITY} | {
            k: reservation[k] for k in keep if k in reservation
        }

    @staticmethod
    def _guard_update(customer_id: str, version: int) -> dict[str, Any]:
        values: dict[str, Any] = {":next": version + 1, ":en": model.RESERVATION_GUARD_ENTITY}
        if version:
            condition = "#ver = :v"
            values[":v"] = version
        else:
            condition = "attribute_not_exists(#ver)"
        return tx_update(
            *model.reservation_guard_key(customer_id),
            "SET #ver = :next, #en = :en",
            condition,
            {"#ver": "version", "#en": "entity"},
            values,
        )

    def reservation_guard(self, customer_id: str) -> int:
        """The version of a customer's ``RESGUARD`` (0 before their first capped reservation)."""
        item = self.table.get(*model.reservation_guard_key(customer_id))
        return int(item.get("version", 0)) if item else 0

    def customer_reservations(self, customer_ids: list[str]) -> list[Item]:
        """Reservations of a customer (and the ids it absorbed), newest first (pointers + BatchGet)."""
        keys = [
            model.reservation_key(pointer["reservation_id"])
            for cid in customer_ids
            for pointer in self.table.query_all(
                customers.customer_pk(cid), sk_prefix=model.CUSTOMER_RESERVATION_PREFIX, consistent=True
            )
        ]
        items = self.table.batch_get(keys) if keys else []
        return sorted(items, key=lambda i: (str(i.get("created_at", "")), i["reservation_id"]), reverse=True)

    def get_reservation(self, reservation_id: str) -> Item | None:
        return self.table.get(*model.reservation_key(reservation_id))

    def settle(self, reservation: Item, status: Literal["collected", "released", "expired"]) -> bool:
        """Close an active reservation: collect (a sale) or release its units; False if not active.

        A release also puts the release marker the TTL safety net uses, so whichever of the job,
        the API and a TTL delete comes first releases the units, and only once.
        """
        rid = reservation["reservation_id"]
        sku, location_id = reservation["sku"], reservation["location_id"]
        mode: Mode = "collect" if status == "collected" else "release"
        now = model.stamp(_now())
        actions = [
            tx_update(
                *model.reservation_key(rid),
                "SET #st = :st, #up = :now REMOVE gsi1pk, gsi1sk",
                "#st IN (:held, :ready)",
                {"#st": "status", "#up": "updated_at"},
                {":st": status, ":now": now, ":held": "held", ":ready": "ready"},
            )
        ]
        actions += self._settle_shards(reservation, mode)
        if mode == "collect":
            actions.append(
                tx_put_new(
                    self._move_item(
                        sku, location_id, now, f"res:{rid}:collect", -int(reservation["quantity"]), "collect"
                    )
                )
            )
        else:
            actions.append(tx_put_new(self._release_marker(reservation)))
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            if err.reasons[0] == _CCF:
                return False
            raise TransientError(f"reservation {rid} could not be settled: {err.reasons}") from err
        return True

    def release_removed(self, reservation: Item) -> bool:
        """Release the units of a reservation DynamoDB TTL deleted while active (once)."""
        try:
            self.table.transact(
                [tx_put_new(self._release_marker(reservation)), *self._settle_shards(reservation, "release")]
            )
        except TransactionCancelled as err:
            if err.reasons[0] == _CCF:
                return False
            raise TransientError(f"reservation {reservation['reservation_id']}: {err.reasons}") from err
        return True

    def _settle_shards(self, reservation: Item, mode: Mode) -> list[dict[str, Any]]:
        return [
            shard_update(reservation["sku"], reservation["location_id"], int(n), mode, int(q))
            for n, q in reservation["allocations"].items()
            if int(q) > 0
        ]

    def _release_marker(self, reservation: Item) -> Item:
        return self._move_item(
            reservation["sku"],
            reservation["location_id"],
            reservation["hold_until"],
            f"res:{reservation['reservation_id']}:release",
            0,
            "reservation_release",
        )

    def due_reservations(self, day: str, until: str) -> list[Item]:
        """Active reservations whose hold ended on ``day`` at or before ``until`` (GSI1, every page)."""
        return list(
            self.table.query_all(model.reservation_due_pk(day), sk_between=("0", f"{until}~"), index="gsi1")
        )

    def upcoming_reservations(self, day: str, since: str, until: str) -> list[Item]:
        """Active reservations whose hold ends on ``day`` between ``since`` and ``until`` (GSI1)."""
        return list(
            self.table.query_all(model.reservation_due_pk(day), sk_between=(since, f"{until}~"), index="gsi1")
        )

    def mark_expiring(self, reservation_id: str, at: str) -> bool:
        """Set ``expiring_at`` once on an active reservation (the "collect soon" reminder trigger)."""
        try:
            self.table.update(
                *model.reservation_key(reservation_id),
                "SET expiring_at = :at, updated_at = :at",
                condition="attribute_not_exists(expiring_at) AND #st IN (:held, :ready)",
                names={"#st": "status"},
                values={":at": at, ":held": "held", ":ready": "ready"},
                return_values="NONE",
            )
        except Conflict:
            return False
        return True

    # -- customers (read only: identity owns these items) ------------------------------------------
    def customer_ids(self, customer_id: str) -> list[str]:
        """A live customer's id and the ids it absorbed (whose items stay under their own keys)."""
        profile = self.table.get(*customers.profile_key(customer_id), consistent=False) or {}
        return [customer_id, *(profile.get("absorbed_ids") or [])]

    def survivor_of(self, customer_id: str) -> str | None:
        """The surviving id of a customer (REDIRECT items followed); None when no profile exists."""
        current = customers.resolve(self.table, customer_id, consistent=False)
        if self.table.get(*customers.profile_key(current), consistent=False) is None:
            return None
        return current

    # -- orders ---------------------------------------------------------------------------------
    def active(self, sku: str) -> int:
        """How many shards take writes for this SKU (``shards`` of its CONFIG item; 1 by default)."""
        return max(1, min(int(self.config(sku).get("shards", 1)), model.MAX_SHARDS))

    def take_line(self, record: Item, line: Item) -> model.Take:
        """Take one order line at the record's location: once for every event and attempt of it.

        First ONE plain conditional UpdateItem of the line's home shard: enough available, no count
        after the order, room in the journal and the line's tag not in ``takes``; it appends the
        entry and the tag. Otherwise the location's shards are read: an entry of the line found on
        one of them IS the take (another event of the order, or an earlier attempt, made it);
        else the take is planned (largest available first, nothing when a count after the order
        contains it), its entry on the home shard, whose full journal is flushed first, every
        shard write guarded by what was read.
        """
        sku, loc, at = line["sku"], record["location_id"], record["at"]
        units = int(line["quantity"])
        mine = model.Take(
            at=at,
            delta=-units,
            short=0,
            tag=model.take_tag(record["channel"], record["order_id"], line["line_id"]),
            event=model.event_tag(record["event_id"]),
            channel=record["channel"],
            order_id=record["order_id"],
        )
        active = self.active(sku)
        home = mine.home(active)
        try:
            self.table.update(
                model.sku_pk(sku),
                model.shard_sk(loc, home),
                "SET #oh = #oh - :u, #av = #av - :u, #up = :now, "
                "#jr = list_append(if_not_exists(#jr, :nojr), :jr) ADD #ver :one, #tk :tk",
                condition="#av >= :u AND (attribute_not_exists(#ct) OR #ct < :at) "
                "AND (attribute_not_exists(#jr) OR size(#jr) < :size) AND NOT contains(#tk, :tag)",
                names={
                    **{k: _NAMES[k] for k in ("#oh", "#av", "#up", "#ver")},
                    **_JOURNAL_NAMES,
                    "#ct": "counted_at",
                },
                values={
                    ":u": units,
                    ":now": model.stamp(_now()),
                    ":nojr": [],
                    ":jr": [mine.entry()],
                    ":one": 1,
                    ":tk": {mine.tag},
                    ":tag": mine.tag,
                    ":at": at,
                    ":size": model.JOURNAL_SIZE,
                },
                return_values="NONE",
            )
        except Conflict:
            pass  # short, counted, journal full, or the line already taken: read and see
        else:
            return mine

        def attempt(_: int) -> model.Take:
            shards = self.shards(sku, loc)
            for shard in shards:
                if (found := shard.entry_of(mine.tag)) is not None:
                    return found
            counted = max((s.counted_at for s in shards if s.counted_at), default=None)
            absorbed = counted is not None and counted >= at  # the count contains this take
            plan = {} if absorbed else model.plan_take(shards, units, partial=True)
            got = sum(plan.values())
            take = replace(mine, delta=-got, short=0 if absorbed else units - got)
            old = next((s for s in shards if s.shard == home), None)
            kept = list(old.journal) if old else []
            if old and len(old.journal) >= model.JOURNAL_SIZE:
                kept = self._flush(sku, old)
            if self._write_take(sku, loc, home, old, take, plan, kept):
                return take
            raise Again  # a shard moved under us (or a count landed): read again

        return retry(attempt, attempts=ATTEMPTS, what=f"stock of {sku} at {loc}")

    def _write_take(
        self,
        sku: str,
        loc: str,
        home: int,
        old: Shard | None,
        take: model.Take,
        plan: dict[int, int],
        kept: list[str],
    ) -> bool:
        """The planned take: its home shard (entry, tag, its units) guarded by the version read,
        plainly, or with the other shards' takes in one transaction; False when a shard moved."""
        journal = [*kept, take.entry()]
        tags = {t.tag for t in map(model.Take.parse, journal) if t is not None}
        values: dict[str, Any] = {
            ":z": 0,
            ":one": 1,
            ":u": plan.get(home, 0),
            ":now": model.stamp(_now()),
            ":en": model.STOCK_ENTITY,
            ":sku": sku,
            ":loc": loc,
            ":sh": home,
            ":jr": journal,
            ":tk": tags,
        }
        if old is None:
            condition = "attribute_not_exists(#ver)"
        else:
            condition = "#ver = :v" if old.version else "attribute_not_exists(#ver) OR #ver = :v"
            values[":v"] = old.version
        update = (
            model.sku_pk(sku),
            model.shard_sk(loc, home),
            "SET #oh = if_not_exists(#oh, :z) - :u, #rs = if_not_exists(#rs, :z), "
            "#av = if_not_exists(#av, :z) - :u, #up = :now, #en = :en, #sku = :sku, #loc = :loc, "
            "#sh = :sh, #jr = :jr, #tk = :tk ADD #ver :one",
            condition,
            {**_NAMES, **_JOURNAL_NAMES},
            values,
        )
        others = [shard_update(sku, loc, n, "sell", q, before=take.at) for n, q in plan.items() if n != home]
        try:
            if others:
                self.table.transact([tx_update(*update), *others])
            else:
                pk, sk, expression, cond, names, vals = update
                self.table.update(
                    pk, sk, expression, condition=cond, names=names, values=vals, return_values="NONE"
                )
        except Conflict:  # TransactionCancelled is one
            return False
        return True

    def _flush(self, sku: str, shard: Shard) -> list[str]:
        """Flush a full journal: the entries that may leave go to a ``JRN#`` page; those that stay.

        The page is written before the shard is (plainly, not in one transaction): a count that
        sees an entry in both counts it once (entries are distinct).
        """
        leaving = self._settled(sku, shard.location_id, shard.journal)
        if leaving:
            self.table.put(self._journal_page(sku, shard, [e for e in shard.journal if e in leaving]))
        return [e for e in shard.journal if e not in leaving]

    def _settled(self, sku: str, location_id: str, entries: Iterable[str]) -> set[str]:
        """Journal entries that may leave their shard: those whose order's record exists.

        An entry its record lists is accounted for; one it does not list (a cancel's tombstone, or
        the line taken again after its first take's entry had left) is undone first, once.
        An entry whose order has no record yet stays: its order is being taken, or will be retried.
        """
        takes = {e: model.Take.parse(e) for e in entries}
        keys = list(dict.fromkeys(model.order_key(t.channel, t.order_id) for t in takes.values() if t))
        records = {r["pk"]: r for r in (self.table.batch_get(keys) if keys else [])}
        leaving = set()
        for entry, take in takes.items():
            record = None if take is None else records.get(model.order_key(take.channel, take.order_id)[0])
            if take is not None and record is None:
                continue
            if take is not None and record is not None and entry not in (record.get("entries") or ()):
                self.undo_take(sku, location_id, take)
            leaving.add(entry)
        return leaving

    def undo_take(self, sku: str, location_id: str, take: model.Take) -> Applied:
        """Give back a take its order's record does not account for (once: its own ``MOVE#`` key).

        Stamped with the take's own time, so the two cancel out in any count's window.
        """
        return self.move(
            sku,
            location_id,
            take.units,
            at=take.at,
            key=take.undo_key(),
            reason="order_take_undone",
            active=self.active(sku),
        )

    def order_takes(self, record: Item, lines: Iterable[Item]) -> list[tuple[str, model.Take]]:
        """The takes of an order's lines still journaled on their location's shards (any attempt)."""
        channel, order_id = record["channel"], record["order_id"]
        wanted = {model.take_tag(channel, order_id, line["line_id"]): line["sku"] for line in lines}
        found = []
        for sku in dict.fromkeys(wanted.values()):
            for shard in self.shards(sku, record["location_id"]):
                takes = (shard.entry_of(tag) for tag, s in wanted.items() if s == sku)
                found += [(sku, t) for t in takes if t is not None]
        return found

    def put_shortfall(self, record: Item, line: Item, take: model.Take) -> None:
        """The backorder of a line taken short (keyed by its take: the same for every attempt)."""
        self.table.put(
            self._shortfall_item(
                line["sku"],
                record["location_id"],
                take.at,
                _line_key(record, line),
                take.short,
                f"order_{record['fulfilment']}",
            )
        )

    def _journal_page(self, sku: str, shard: Shard, entries: list[str]) -> Item:
        expires = _now() + timedelta(days=self.move_retention_days)
        last = max(entry[:27] for entry in entries)
        digest = hashlib.blake2b("\n".join(entries).encode(), digest_size=4).hexdigest()
        return {
            "pk": model.sku_pk(sku),
            "sk": model.journal_sk(shard.location_id, last, shard.shard, f"{shard.version}-{digest}"),
            "entity": model.JOURNAL_ENTITY,
            "sku": sku,
            "location_id": shard.location_id,
            "shard": shard.shard,
            "entries": entries,
            "expires_at": int(expires.timestamp()),
        }

    def get_order(self, channel: str, order_id: str) -> Item | None:
        return self.table.get(*model.order_key(channel, order_id))

    def open_order(self, item: Item) -> bool:
        """Put the stock record of an order if new (the lock of its first committing event)."""
        return self.table.put_new(item)

    def close_order(self, channel: str, order_id: str, status: str, expected: str, **attrs: Any) -> bool:
        sets = ["#st = :st", "#up = :now"]
        names = {"#st": "status", "#up": "updated_at"}
        values: dict[str, Any] = {":st": status, ":now": model.stamp(_now()), ":exp": expected}
        for i, (name, value) in enumerate(attrs.items()):
            sets.append(f"#a{i} = :a{i}")
            names[f"#a{i}"] = name
            values[f":a{i}"] = value
        try:
            self.table.update(
                *model.order_key(channel, order_id),
                "SET " + ", ".join(sets),
                condition="#st = :exp",
                names=names,
                values=values,
                return_values="NONE",
            )
        except Conflict:
            return False
        return True

    # -- signals and alerts ----------------------------------------------------------------------
    def set_signal_state(
        self, sku: str, location_id: str, previous: str | None, state: str, signal: Item | None
    ) -> bool:
        """Move a location's signal state (conditionally) and insert its signal item, together."""
        names = {"#en": "entity", "#sku": "sku", "#loc": "location_id", "#sg": "signal", "#at": "signal_at"}
        values: dict[str, Any] = {
            ":en": model.LOCATION_ENTITY,
            ":sku": sku,
            ":loc": location_id,
            ":sg": state,
            ":at": model.stamp(_now()),
        }
        if previous is None:
            condition = "attribute_not_exists(#sg)"
        else:
            condition = "#sg = :prev"
            values[":prev"] = previous
        actions = [
            tx_update(
                model.sku_pk(sku),
                model.meta_sk(location_id),
                "SET #en = :en, #sku = :sku, #loc = :loc, #sg = :sg, #at = :at",
                condition,
                names,
                values,
            )
        ]
        if signal is not None:
            actions.append(tx_put_new(signal))
        try:
            self.table.transact(actions)
        except TransactionCancelled:
            return False
        return True

    def put_alert(self, item: Item) -> None:
        self.table.put(item)


def _line_key(record: Item, line: Item) -> str:
    """The business key of an order line's take (its journal entry, its shortfall)."""
    return f"ord:{record['channel']}:{record['order_id']}:{line['line_id']}"


def _fast_order(active: int) -> list[int]:
    """Shards to try first: a random one (and a second), so writers spread over the shards."""
    if active <= 1:
        return [0]
    first = secrets.randbelow(active)
    second = (first + 1 + secrets.randbelow(active - 1)) % active
    return [first, second][:FAST_TRIES]
