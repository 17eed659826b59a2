"""Points entities in the single table: keys, items, and the in-memory shapes the ledger works on.

Every points item lives in the customer's collection ``CUST#<customer_id>`` (see
docs/data-model.md, "Points"), except accrual rules (``PTSRULE``) and job cursors (``PTSJOB``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from loyalty.customers import customer_pk
from loyalty.store.table import Item

BALANCE_ENTITY = "points_balance"
ENTRY_ENTITY = "points_entry"
LOT_ENTITY = "points_lot"
DEDUPE_ENTITY = "points_dedupe"
WAITING_ENTITY = "points_waiting_refund"
REDEMPTION_ENTITY = "points_redemption"
TIER_CHANGE_ENTITY = "tier_change"
EXPIRING_ENTITY = "points_expiring"
MERGE_ENTITY = "points_merge"
RULE_ENTITY = "points_rule"
JOB_ENTITY = "points_job"
BONUS_CLAIM_ENTITY = "points_bonus_claim"

EntryKind = Literal["earn", "bonus", "reverse", "redeem", "expire", "adjust", "merge_transfer"]
LotStatus = Literal["pending", "available", "expired", "reversed"]

#: GSI1 partitions of lots due for release / expiry (and balances due for a tier review) are
#: sharded per day so one busy day never concentrates its writes on one index partition.
SHARDS = 8
TIERS = ("bronze", "silver", "gold")


def balance_sk() -> str:
    return "PTS#BALANCE"


def entry_sk(version: int, index: int) -> str:
    return f"PTS#E#{version:012d}#{index:02d}"


def _keyed(prefix: str) -> Callable[[str], str]:
    """The sort key of an item kind named by one id: ``PTS#<prefix>#<id>``."""
    return lambda key: f"PTS#{prefix}#{key}"


#: ``PTS#LOT#<order_id>``, ``PTS#EV#<event_id>``, ``PTS#WAIT#<order_id>``, ``PTS#RDM#<redemption_id>``
lot_sk, dedupe_sk, waiting_sk, redemption_sk = (_keyed(p) for p in ("LOT", "EV", "WAIT", "RDM"))


def bonus_claim_sk(kind: str, scope: str) -> str:
    """``PTS#BONUS#<rule kind>#<scope>``: who won a once-per-scope bonus (a channel, a month)."""
    return f"PTS#BONUS#{kind}#{scope}"


def tier_change_sk(at: datetime) -> str:
    return _keyed("TIER")(at.isoformat())


def expiring_sk(run_day: date) -> str:
    return _keyed("EXPIRING")(run_day.isoformat())


def merge_sk(merge_id: str, absorbed_id: str, kind: str) -> str:
    return f"PTS#MERGE#{kind}#{merge_id}#{absorbed_id}"


def shard_of(customer_id: str) -> int:
    return int(hashlib.sha256(customer_id.encode()).hexdigest()[:8], 16) % SHARDS


def day_shard_key(prefix: str, day: date, shard: int) -> str:
    """GSI1 partition of one day's shard: ``PTSDUE|PTSEXP|PTSTIER#<yyyy-mm-dd>#<shard>``."""
    return f"{prefix}#{day.isoformat()}#{shard}"


def due_gsi(day: date, customer_id: str) -> str:
    return day_shard_key("PTSDUE", day, shard_of(customer_id))


def expiry_gsi(day: date, customer_id: str) -> str:
    return day_shard_key("PTSEXP", day, shard_of(customer_id))


def review_gsi(day: date, customer_id: str) -> str:
    return day_shard_key("PTSTIER", day, shard_of(customer_id))


@dataclass
class LineEarning:
    """Points one order line earned, and how much of it was returned since."""

    sku: str
    quantity: int
    points: int
    rule_ids: list[str] = field(default_factory=list)
    refunded_qty: int = 0
    reversed: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sku": self.sku,
            "quantity": self.quantity,
            "points": self.points,
            "rule_ids": self.rule_ids,
        }
        if self.refunded_qty or self.reversed:  # absent: none returned (a lot stays under 1 KB)
            data |= {"refunded_qty": self.refunded_qty, "reversed": self.reversed}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineEarning:
        return cls(
            sku=data["sku"],
            quantity=int(data["quantity"]),
            points=int(data["points"]),
            rule_ids=list(data.get("rule_ids", [])),
            refunded_qty=int(data.get("refunded_qty", 0)),
            reversed=int(data.get("reversed", 0)),
        )


@dataclass
class Lot:
    """One earning (an order): its points, what is left of them, and when they mature and expire."""

    customer_id: str
    order_id: str
    channel: str
    event_id: str
    occurred_at: str
    pending_until: str
    expires_on: str
    points: int
    remaining: int
    status: LotStatus = "pending"
    lines: dict[str, LineEarning] = field(default_factory=dict)
    bonus: int = 0
    bonus_rule_ids: list[str] = field(default_factory=list)
    bonus_reversed: int = 0
    order_total: str = "0"
    refunded_amount: str = "0"
    amount_reversed: int = 0
    reversed: int = 0
    settled_debt: int = 0
    expired_unclaimed: int = 0
    refund_keys: list[str] = field(default_factory=list)
    currency: str = ""
    origin_customer_id: str | None = None
    #: the lot is its earning's ledger entry (and its bonus entry): no ``PTS#E#`` item was written
    #: for them (lots of the earlier code have entry items and no ``own_entries``)
    own_entries: bool = False
    #: counted in the balance item; an earning written as one plain put is not (see ``Book.fold``)
    folded: bool = True
    earned_at: str = ""
    bonus_parts: dict[str, int] = field(default_factory=dict)
    #: where the lot's own entries sit in the ledger: the balance version that folded it
    entry_version: int = 0
    entry_index: int = 0
    #: the month whose omnichannel bonus this lot won (a fold records it on the balance)
    omni_period: str | None = None

    @property
    def qualifying(self) -> int:
        """Points of this lot that count for tiers (earned minus reversed)."""
        return self.points - self.reversed

    @property
    def month(self) -> str:
        return self.occurred_at[:7]

    def to_item(self) -> Item:
        item: Item = {
            "pk": customer_pk(self.customer_id),
            "sk": lot_sk(self.order_id),
            "entity": LOT_ENTITY,
            "customer_id": self.customer_id,
            "order_id": self.order_id,
            "channel": self.channel,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at,
            "pending_until": self.pending_until,
            "expires_on": self.expires_on,
            "points": self.points,
            "remaining": self.remaining,
            "status": self.status,
            "lines": {k: v.to_dict() for k, v in self.lines.items()},
            "bonus": self.bonus,
            "bonus_rule_ids": self.bonus_rule_ids,
            "bonus_reversed": self.bonus_reversed,
            "order_total": self.order_total,
            "refunded_amount": self.refunded_amount,
            "amount_reversed": self.amount_reversed,
            "reversed": self.reversed,
            "settled_debt": self.settled_debt,
            "expired_unclaimed": self.expired_unclaimed,
            "refund_keys": self.refund_keys,
            "currency": self.currency,
            "origin_customer_id": self.origin_customer_id,
            "omni_period": self.omni_period,
        }
        for key in _LOT_DEFAULTS:  # absent means zero / none: a lot stays under 1 KB (1 WCU a put)
            if item[key] in (None, 0, "0", []):
                del item[key]
        if self.own_entries:
            item |= {"own_entries": True, "folded": self.folded, "earned_at": self.earned_at}
            if self.bonus_parts:
                item["bonus_parts"] = self.bonus_parts
            if self.folded:
                item |= {"entry_version": self.entry_version, "entry_index": self.entry_index}
        if self.status == "pending":
            item["gsi1pk"] = due_gsi(date.fromisoformat(self.pending_until[:10]), self.customer_id)
            item["gsi1sk"] = f"{self.customer_id}#{self.order_id}"
        elif self.status == "available" and self.remaining > 0:
            item["gsi1pk"] = expiry_gsi(date.fromisoformat(self.expires_on[:10]), self.customer_id)
            item["gsi1sk"] = f"{self.customer_id}#{self.order_id}"
        return item

    @classmethod
    def from_item(cls, item: Item) -> Lot:
        return cls(
            customer_id=item["customer_id"],
            order_id=item["order_id"],
            channel=item["channel"],
            event_id=item["event_id"],
            occurred_at=item["occurred_at"],
            pending_until=item["pending_until"],
            expires_on=item["expires_on"],
            points=int(item["points"]),
            remaining=int(item["remaining"]),
            status=item["status"],
            lines={k: LineEarning.from_dict(v) for k, v in item.get("lines", {}).items()},
            bonus=int(item.get("bonus", 0)),
            bonus_rule_ids=list(item.get("bonus_rule_ids", [])),
            bonus_reversed=int(item.get("bonus_reversed", 0)),
            order_total=str(item.get("order_total", "0")),
            refunded_amount=str(item.get("refunded_amount", "0")),
            amount_reversed=int(item.get("amount_reversed", 0)),
            reversed=int(item.get("reversed", 0)),
            settled_debt=int(item.get("settled_debt", 0)),
            expired_unclaimed=int(item.get("expired_unclaimed", 0)),
            refund_keys=list(item.get("refund_keys", [])),
            currency=item.get("currency", ""),
            origin_customer_id=item.get("origin_customer_id"),
            own_entries=bool(item.get("own_entries", False)),
            folded=bool(item.get("folded", True)),
            earned_at=item.get("earned_at", ""),
            bonus_parts={k: int(v) for k, v in item.get("bonus_parts", {}).items()},
            entry_version=int(item.get("entry_version", 0)),
            entry_index=int(item.get("entry_index", 0)),
            omni_period=item.get("omni_period"),
        )

    def own_ledger(self) -> list[Entry]:
        """The earning's entries this lot stands for (earn, then bonus), at their ledger position.

        A lot not folded yet has no position: it sits after every entry (``UNFOLDED_VERSION``).
        """
        if not self.own_entries:
            return []
        version = self.entry_version if self.folded else UNFOLDED_VERSION
        cause = {"customer_id": self.customer_id, "at": self.earned_at, "version": version}
        cause |= {"event_id": self.event_id, "order_id": self.order_id, "channel": self.channel}
        earn = Entry(
            kind="earn",
            points=self.points - self.bonus,
            rule_ids=sorted({rid for line in self.lines.values() for rid in line.rule_ids}),
            lines=[
                {"line_id": lid, "sku": line.sku, "points": line.points, "rule_ids": line.rule_ids}
                for lid, line in self.lines.items()
            ],
            index=self.entry_index,
            **cause,  # type: ignore[arg-type]
        )
        if not self.bonus:
            return [earn]
        bonus = Entry(
            kind="bonus",
            points=self.bonus,
            rule_ids=self.bonus_rule_ids,
            lines=[{"rule_id": rid, "points": pts} for rid, pts in self.bonus_parts.items()],
            index=self.entry_index + 1,
            **cause,  # type: ignore[arg-type]
        )
        return [earn, bonus]


#: lot attributes left out of the item while zero / empty (``from_item`` reads them so)
_LOT_DEFAULTS = (
    "bonus",
    "bonus_rule_ids",
    "bonus_reversed",
    "refunded_amount",
    "amount_reversed",
    "reversed",
    "settled_debt",
    "expired_unclaimed",
    "refund_keys",
    "origin_customer_id",
    "omni_period",
)

#: the ledger position of the entries of lots not folded yet: after every committed version
UNFOLDED_VERSION = 10**12 - 1


@dataclass
class Entry:
    """One append-only ledger line: a signed change of (available + pending - debt) and its cause."""

    customer_id: str
    kind: EntryKind
    points: int
    at: str
    event_id: str | None = None
    order_id: str | None = None
    channel: str | None = None
    rule_ids: list[str] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    lots: dict[str, int] = field(default_factory=dict)
    redemption_id: str | None = None
    merge_id: str | None = None
    origin_customer_id: str | None = None
    note: str | None = None
    version: int = 0
    index: int = 0

    def to_item(self) -> Item:
        return {
            "pk": customer_pk(self.customer_id),
            "sk": entry_sk(self.version, self.index),
            "entity": ENTRY_ENTITY,
            "customer_id": self.customer_id,
            "kind": self.kind,
            "points": self.points,
            "at": self.at,
            "event_id": self.event_id,
            "order_id": self.order_id,
            "channel": self.channel,
            "rule_ids": self.rule_ids or None,
            "lines": self.lines or None,
            "lots": self.lots or None,
            "redemption_id": self.redemption_id,
            "merge_id": self.merge_id,
            "origin_customer_id": self.origin_customer_id,
            "note": self.note,
        }

    @classmethod
    def from_item(cls, item: Item) -> Entry:
        _, _, version, index = item["sk"].split("#")
        return cls(
            customer_id=item["customer_id"],
            kind=item["kind"],
            points=int(item["points"]),
            at=item["at"],
            event_id=item.get("event_id"),
            order_id=item.get("order_id"),
            channel=item.get("channel"),
            rule_ids=list(item.get("rule_ids", [])),
            lines=list(item.get("lines", [])),
            lots=dict(item.get("lots", {})),
            redemption_id=item.get("redemption_id"),
            merge_id=item.get("merge_id"),
            origin_customer_id=item.get("origin_customer_id"),
            note=item.get("note"),
            version=int(version),
            index=int(index),
        )


@dataclass
class Balance:
    """The aggregate beside the ledger: available + pending - debt == sum of entries."""

    customer_id: str
    available: int = 0
    pending: int = 0
    debt: int = 0
    lifetime_earned: int = 0
    tier: str = "bronze"
    tier_since: str | None = None
    downgrade_since: str | None = None
    review_on: str | None = None
    version: int = 0
    buckets: dict[str, int] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)
    omni_periods: list[str] = field(default_factory=list)
    merged_debt: dict[str, int] = field(default_factory=dict)
    updated_at: str | None = None

    @property
    def net(self) -> int:
        return self.available + self.pending - self.debt

    def to_item(self) -> Item:
        item: Item = {
            "pk": customer_pk(self.customer_id),
            "sk": balance_sk(),
            "entity": BALANCE_ENTITY,
            "customer_id": self.customer_id,
            "available": self.available,
            "pending": self.pending,
            "debt": self.debt,
            "lifetime_earned": self.lifetime_earned,
            "tier": self.tier,
            "tier_since": self.tier_since,
            "downgrade_since": self.downgrade_since,
            "review_on": self.review_on,
            "version": self.version,
            "buckets": {k: v for k, v in self.buckets.items() if v},
            "channels": self.channels,
            "omni_periods": self.omni_periods,
            "merged_debt": self.merged_debt,
            "updated_at": self.updated_at,
        }
        if self.review_on:
            item["gsi1pk"] = review_gsi(date.fromisoformat(self.review_on), self.customer_id)
            item["gsi1sk"] = self.customer_id
        return item

    @classmethod
    def from_item(cls, item: Item) -> Balance:
        return cls(
            customer_id=item["customer_id"],
            available=int(item.get("available", 0)),
            pending=int(item.get("pending", 0)),
            debt=int(item.get("debt", 0)),
            lifetime_earned=int(item.get("lifetime_earned", 0)),
            tier=item.get("tier", "bronze"),
            tier_since=item.get("tier_since"),
            downgrade_since=item.get("downgrade_since"),
            review_on=item.get("review_on"),
            version=int(item.get("version", 0)),
            buckets={k: int(v) for k, v in item.get("buckets", {}).items()},
            channels=dict(item.get("channels", {})),
            omni_periods=list(item.get("omni_periods", [])),
            merged_debt={k: int(v) for k, v in item.get("merged_debt", {}).items()},
            updated_at=item.get("updated_at"),
        )
