"""Stock entities, their keys, and the pure rules (allocation to shards, signals). No AWS here.

Every figure lives in the ``SKU#<sku>`` collection (see docs/data-model.md, "Stock"):

- ``LOC#<loc>#S#<nn>``   ``stock``          one shard of a location's stock (on hand / reserved /
                                              available, ``version``, ``counted_at``, ``updated_at``,
                                              ``journal``: its last order takes (``Take``), and
                                              ``takes``: their tags, the guard of each line)
- ``LOC#<loc>#META``     ``stock_location`` signal state of a location (and of ``ONLINE``)
- ``CONFIG``             ``stock_config``   per-SKU data: low-stock threshold, shard count
- ``MOVE#<loc>#<ts>#<key>`` ``stock_move``  applied-once marker AND journal of the on-hand deltas
                                              of every fact but order takes (returns, adjustments,
                                              counts, collections, releases)
- ``JRN#<loc>#<ts>#<nn>#<v>`` ``stock_journal`` a full shard journal, flushed (order takes)
- ``SHORT#<loc>#<ts>#<key>`` ``stock_shortfall`` units an order/adjustment could not take
- ``SIG#<loc>#<ts>#<signal>`` ``stock_signal`` out_of_stock / back_in_stock / low_stock (INSERT)
- ``ALERT#<loc|ONLINE>#<customer_id>`` ``stock_alert`` back-in-stock subscriptions

Orders are ``STKORD#<channel>#<order_id>`` / ``STKORD`` (``stock_order``): the order's record
(lines, units taken and short per line, the ``entries`` of the takes it accounts for), put once
its lines are taken; a cancel that comes first puts it as a tombstone.

Reservations are ``RES#<id>`` / ``RES``; each also has a pointer in its customer's collection,
``CUST#<customer_id>`` / ``RES#<id>`` (``customer_reservation``, written in the reservation's own
transaction, same TTL), and capped reservations bump ``CUST#<customer_id>`` / ``RESGUARD``.

Invariants of every shard: ``on_hand >= 0``, ``reserved >= 0``, ``available >= 0`` and
``available == on_hand - reserved`` (so ``reserved <= on_hand``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ONLINE = "ONLINE"
STOCK_ENTITY = "stock"
LOCATION_ENTITY = "stock_location"
CONFIG_ENTITY = "stock_config"
MOVE_ENTITY = "stock_move"
SHORTFALL_ENTITY = "stock_shortfall"
SIGNAL_ENTITY = "stock_signal"
ALERT_ENTITY = "stock_alert"
ORDER_ENTITY = "stock_order"
JOURNAL_ENTITY = "stock_journal"
#: order takes a shard keeps before they are flushed to a ``JRN#`` item (keeps a shard < 1 KB);
#: a take whose order has no record yet is never flushed (see ``Take``), so it may hold more
JOURNAL_SIZE = 7
RESERVATION_ENTITY = "reservation"
CUSTOMER_RESERVATION_ENTITY = "customer_reservation"
RESERVATION_GUARD_ENTITY = "reservation_guard"
CUSTOMER_RESERVATION_PREFIX = "RES#"
MAX_SHARDS = 32

Signal = Literal["out_of_stock", "back_in_stock", "low_stock"]
SignalState = Literal["in_stock", "low_stock", "out_of_stock"]


def stamp(moment: datetime) -> str:
    """A sortable, fixed-width UTC timestamp (sort keys and ``*_at`` attributes)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _key(*parts: object) -> str:
    return "#".join(str(p) for p in parts)


def sku_pk(sku: str) -> str:
    return _key("SKU", sku)


def location_prefix(location_id: str) -> str:
    return _key("LOC", location_id, "")


def shard_sk(location_id: str, shard: int) -> str:
    return _key("LOC", location_id, "S", f"{shard:02d}")


def meta_sk(location_id: str) -> str:
    return _key("LOC", location_id, "META")


CONFIG_SK = "CONFIG"
#: GET /stock/{sku} reads CONFIG and every LOC# item with one query: sk BETWEEN these bounds.
AVAILABILITY_RANGE = ("CONFIG", "LOC$")


def move_sk(location_id: str, at: str, key: str) -> str:
    return _key("MOVE", location_id, at, key)


def journal_sk(location_id: str, last_at: str, shard: int, version: str) -> str:
    """A flushed page of a shard's journal, sorted by the newest fact it holds (``version``: the
    shard's version and a digest of the page's entries)."""
    return _key("JRN", location_id, last_at, f"{shard:02d}", version)


def journal_prefix(location_id: str) -> str:
    return _key("JRN", location_id, "")


def shortfall_sk(location_id: str, at: str, key: str) -> str:
    return _key("SHORT", location_id, at, key)


def signal_sk(location_id: str, at: str, signal: str) -> str:
    return _key("SIG", location_id, at, signal)


def alert_sk(location_id: str, customer_id: str) -> str:
    return _key("ALERT", location_id, customer_id)


def order_key(channel: str, order_id: str) -> tuple[str, str]:
    return f"STKORD#{channel}#{order_id}", "STKORD"


def reservation_key(reservation_id: str) -> tuple[str, str]:
    return f"RES#{reservation_id}", "RES"


def customer_reservation_key(customer_id: str, reservation_id: str) -> tuple[str, str]:
    """A customer's pointer to one reservation (reservations by customer, in their collection)."""
    return f"CUST#{customer_id}", f"{CUSTOMER_RESERVATION_PREFIX}{reservation_id}"


def reservation_guard_key(customer_id: str) -> tuple[str, str]:
    """The version item that serialises a customer's capped reservations (caps under races)."""
    return f"CUST#{customer_id}", "RESGUARD"


def reservation_due_pk(day: str) -> str:
    """GSI1 partition of active reservations whose hold ends on ``day`` (yyyy-mm-dd)."""
    return f"RESDUE#{day}"


@dataclass(frozen=True)
class Shard:
    """One shard of a location's stock, as read from the table."""

    location_id: str
    shard: int
    on_hand: int = 0
    reserved: int = 0
    available: int = 0
    version: int = 0
    updated_at: str | None = None
    counted_at: str | None = None
    journal: tuple[str, ...] = ()
    takes: frozenset[str] = frozenset()

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Shard:
        return cls(
            location_id=item["location_id"],
            shard=int(item["shard"]),
            on_hand=int(item.get("on_hand", 0)),
            reserved=int(item.get("reserved", 0)),
            available=int(item.get("available", 0)),
            version=int(item.get("version", 0)),
            updated_at=item.get("updated_at"),
            counted_at=item.get("counted_at"),
            journal=tuple(item.get("journal") or ()),
            takes=frozenset(item.get("takes") or ()),
        )

    def entry_of(self, tag: str) -> Take | None:
        """The journal entry of the order line whose guard is ``tag`` (None: not on this shard)."""
        if tag not in self.takes:
            return None
        return next((t for t in map(Take.parse, self.journal) if t is not None and t.tag == tag), None)


def take_tag(channel: str, order_id: str, line_id: str) -> str:
    """The guard of one order line in its home shard's ``takes`` (the same for every event of it)."""
    return hashlib.blake2b(f"{channel}\x1f{order_id}\x1f{line_id}".encode(), digest_size=6).hexdigest()


def event_tag(event_id: str) -> str:
    """Which event made a take (two takes of one line can only come from different events)."""
    return hashlib.blake2b(event_id.encode(), digest_size=4).hexdigest()


@dataclass(frozen=True)
class Take:
    """One order line's take, journaled on its home shard without a transaction.

    Entry: ``<fact ts>|<on-hand delta>|<units short>|<tag>|<event tag>|<channel>|<order_id>``. The
    ``tag`` (also in the shard's ``takes`` set) refuses a second take of the line while the entry
    is on the shard; the channel and order locate the order's ``STKORD`` record, which lists the
    entries it accounts for. An entry leaves the shard (flushed to a page, or dropped by a count)
    only once that record exists: listed, it is accounted for; not listed (a tombstone, or the
    order committed by another take of the line), it is undone first (``undo_key``, once).
    """

    at: str
    delta: int
    short: int
    tag: str
    event: str
    channel: str
    order_id: str

    @property
    def units(self) -> int:
        return -self.delta

    def entry(self) -> str:
        return f"{self.at}|{self.delta}|{self.short}|{self.tag}|{self.event}|{self.channel}|{self.order_id}"

    @classmethod
    def parse(cls, entry: str) -> Take | None:
        """A take of this format; None for an entry of the earlier format (``<ts>|<delta>|ord:...``),
        which was written in its order's transaction and is always accounted for."""
        parts = entry.split("|", 6)
        if len(parts) < 7 or not parts[2].isdigit():
            return None
        at, delta, short, tag, event, channel, order_id = parts
        return cls(at, int(delta), int(short), tag, event, channel, order_id)

    def home(self, active: int) -> int:
        """The shard that holds this line's guard: the same for every event of the order."""
        return home_shard(self.tag, active)

    def undo_key(self) -> str:
        return f"undo:{self.tag}:{self.event}"


def home_shard(tag: str, active: int) -> int:
    return int(tag, 16) % max(active, 1)


def journal_after(entries: Iterable[str], at: str) -> int:
    """Sum of the on-hand deltas of distinct journal entries for facts stamped strictly after ``at``.

    Distinct: a flush writes its page before it rewrites the shard, so an entry may be seen twice.
    """
    total = 0
    for entry in set(entries):
        stamped, delta, _ = entry.split("|", 2)
        if stamped > at:
            total += int(delta)
    return total


@dataclass(frozen=True)
class LocationStock:
    """A location's figures: the sum of its shards, with the freshness of each figure."""

    location_id: str
    on_hand: int
    reserved: int
    available: int
    updated_at: str | None
    counted_at: str | None
    shards: int

    @classmethod
    def of(cls, location_id: str, shards: list[Shard]) -> LocationStock:
        stamps = [s.updated_at for s in shards if s.updated_at]
        counts = [s.counted_at for s in shards if s.counted_at]
        return cls(
            location_id=location_id,
            on_hand=sum(s.on_hand for s in shards),
            reserved=sum(s.reserved for s in shards),
            available=sum(s.available for s in shards),
            updated_at=max(stamps) if stamps else None,
            counted_at=max(counts) if counts else None,
            shards=len(shards),
        )


def group_shards(items: list[dict[str, Any]]) -> dict[str, list[Shard]]:
    """Stock items of a query, grouped by location (other entities are ignored)."""
    out: dict[str, list[Shard]] = {}
    for item in items:
        if item.get("entity") == STOCK_ENTITY:
            shard = Shard.from_item(item)
            out.setdefault(shard.location_id, []).append(shard)
    return out


def plan_take(shards: list[Shard], quantity: int, *, partial: bool) -> dict[int, int]:
    """Units to take from each shard (largest available first); {} if impossible and not partial."""
    plan: dict[int, int] = {}
    wanted = quantity
    for shard in sorted(shards, key=lambda s: (-s.available, s.shard)):
        if wanted == 0:
            break
        take = min(shard.available, wanted)
        if take > 0:
            plan[shard.shard] = take
            wanted -= take
    if wanted and not partial:
        return {}
    return plan


def spread(total: int, count: int) -> list[int]:
    """``total`` units over ``count`` shards as evenly as possible (remainder to the first)."""
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


@dataclass(frozen=True)
class CountPlan:
    """What an absolute count does to each shard (new on hand per shard) and the shortfall."""

    on_hand: dict[int, int]
    shortfall: int


def plan_count(shards: list[Shard], target_on_hand: int, active: int) -> CountPlan:
    """Set a location's on hand to ``target_on_hand`` without touching reservations.

    Each shard keeps its reserved units; the available units are spread over the first ``active``
    shards. A count below what is reserved keeps on hand at the reserved total (reservations are
    promises to customers) and reports the gap as a shortfall for staff to resolve.
    """
    by_id = {s.shard: s for s in shards}
    ids = sorted(set(by_id) | set(range(active)))
    reserved = {i: by_id[i].reserved if i in by_id else 0 for i in ids}
    total_reserved = sum(reserved.values())
    target = max(target_on_hand, 0)
    shortfall = max(total_reserved - target, 0)
    free = max(target - total_reserved, 0)
    shares = spread(free, active)
    on_hand = {i: reserved[i] + (shares[i] if i < active else 0) for i in ids}
    return CountPlan(on_hand=on_hand, shortfall=shortfall)


def signal_state(available: int, threshold: int) -> SignalState:
    if available <= 0:
        return "out_of_stock"
    if available <= threshold:
        return "low_stock"
    return "in_stock"


def transition(previous: SignalState | None, current: SignalState) -> Signal | None:
    """The signal to emit when a location moves from ``previous`` to ``current`` (None: none)."""
    before = previous or "in_stock"
    if before == current:
        return None
    if current == "out_of_stock":
        return "out_of_stock"
    if before == "out_of_stock":
        return "back_in_stock"
    if current == "low_stock":
        return "low_stock"
    return None
