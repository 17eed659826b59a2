"""The ledger's rules, pure: a ``Book`` (balance + lots of one customer) and the operations on it.

Invariant kept by every operation (and checked by the property tests):
``available + pending - debt == sum(entry.points)``, ``available``, ``pending`` and ``debt`` never
below zero, and ``sum(lot.remaining)`` of available / pending lots == ``available`` / ``pending``.

Clawback: a reversal takes the points from the returned order's own lot first (pending or
available), then from other available lots oldest first, and carries the rest as ``debt``; points
of that lot that had already expired are not clawed back (the customer never used them). Debt is
settled first by later earnings (when an order is credited and when pending points mature).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from loyalty.errors import Unprocessable
from loyalty.points.model import Balance, Entry, EntryKind, LineEarning, Lot
from loyalty.points.rules import Earning, omni_period
from loyalty.store.table import Item


class InsufficientPoints(Unprocessable):
    code = "insufficient_points"


class StaleBook(Exception):
    """The book's items were read at different versions, or the balance changed since: reload."""


@dataclass(frozen=True)
class Policy:
    """Timing policy: return windows per channel, expiry after earning, expiry warning lead time."""

    return_windows: dict[str, int] = field(default_factory=dict)
    default_return_window_days: int = 14
    expiry_days: int = 365
    expiry_warning_days: int = 30

    def window(self, channel: str) -> timedelta:
        return timedelta(days=self.return_windows.get(channel, self.default_return_window_days))


@dataclass(frozen=True)
class RefundRequest:
    """Lines (or an amount, or everything for a cancellation) of an order to reverse points for."""

    refund_key: str
    event_id: str
    channel: str
    lines: dict[str, int] = field(default_factory=dict)  # line_id -> quantity returned
    amount: Decimal = Decimal(0)
    full: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "refund_key": self.refund_key,
            "event_id": self.event_id,
            "channel": self.channel,
            "lines": self.lines,
            "amount": str(self.amount),
            "full": self.full,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RefundRequest:
        lines = data.get("lines") or {}
        assert isinstance(lines, dict)
        return cls(
            refund_key=str(data["refund_key"]),
            event_id=str(data["event_id"]),
            channel=str(data["channel"]),
            lines={str(k): int(v) for k, v in lines.items()},
            amount=Decimal(str(data.get("amount", "0"))),
            full=bool(data.get("full", False)),
        )


def _fifo_key(lot: Lot) -> tuple[str, str]:
    return lot.expires_on, lot.order_id


class Book:
    """One customer's balance and (some of) their lots, plus the uncommitted changes made to them."""

    def __init__(
        self,
        balance: Balance,
        lots: Iterable[Lot],
        now: datetime,
        load_all_lots: Callable[[], list[Lot]] | None = None,
        *,
        exists: bool = True,
    ) -> None:
        self.balance = balance
        self.lots: dict[str, Lot] = {}
        self.folding: set[str] = set()  # lots this book counts in its balance for the first time
        self.now = now
        self.exists = exists
        self.expected_version = balance.version if exists else None
        self._load_all = load_all_lots
        self.all_loaded = load_all_lots is None
        self.entries: list[Entry] = []
        self.waiting: dict[str, list[RefundRequest]] = {}  # refunds stored before their order
        self.redirect_to: str | None = None  # the customer was absorbed: the survivor's id
        self.dirty: set[str] = set()
        self.removed: set[str] = set()
        self.puts: list[tuple[Item, bool]] = []  # (item, must be new)
        self.deletes: list[tuple[str, str]] = []
        for lot in lots:
            self._add(lot)

    # -- helpers -------------------------------------------------------------------------------
    def _add(self, lot: Lot) -> None:
        if lot.order_id not in self.lots:
            self.lots[lot.order_id] = lot
            self.fold(lot)

    def fold(self, lot: Lot) -> None:
        """Count a lot written by a plain put (``folded`` False) in the balance.

        Such a lot is untouched since its earning (every later change of it goes through a
        transaction, which folds it first): its remaining points are all its points. The commit
        rewrites it as folded, with its entries' ledger position, in the same transaction.
        """
        if lot.folded:
            return
        bal = self.balance
        self._credit(lot, lot.remaining)
        bal.lifetime_earned += lot.points
        bal.buckets[lot.month] = bal.buckets.get(lot.month, 0) + lot.points
        if bal.channels.get(lot.channel, "") < lot.occurred_at:
            bal.channels[lot.channel] = lot.occurred_at
        if lot.omni_period:
            bal.omni_periods = _with_period(bal.omni_periods, lot.omni_period)
        lot.folded = True
        self.folding.add(lot.order_id)
        self._touch(lot)

    def place_folded(self, version: int) -> int:
        """Lots folded by this book: their entries go first in the ledger at ``version``.

        Returns the index of the version's first entry item (what was earned comes before what
        the same change then did with it).
        """
        position = 0
        for order_id in sorted(self.folding & set(self.lots)):
            lot = self.lots[order_id]
            lot.folded, lot.entry_version, lot.entry_index = True, version, position
            position += len(lot.own_ledger())
        return position

    def all_lots(self) -> list[Lot]:
        if not self.all_loaded and self._load_all is not None:
            for lot in self._load_all():
                self._add(lot)
            self.all_loaded = True
        return list(self.lots.values())

    @property
    def changed(self) -> bool:
        return bool(self.entries or self.dirty or self.removed or self.puts or self.deletes)

    def _entry(self, kind: EntryKind, points: int, **cause: object) -> Entry:
        entry = Entry(
            customer_id=self.balance.customer_id,
            kind=kind,
            points=points,
            at=self.now.isoformat(),
            **cause,  # type: ignore[arg-type]
        )
        self.entries.append(entry)
        return entry

    def _touch(self, lot: Lot) -> None:
        self.dirty.add(lot.order_id)

    def _take_available(self, points: int, exclude: str | None = None) -> dict[str, int]:
        """Consume ``points`` from available lots, oldest first; returns {order_id: taken}."""
        taken: dict[str, int] = {}
        need = points
        for lot in sorted(self.all_lots(), key=_fifo_key):
            if need == 0:
                break
            if lot.order_id == exclude or lot.status != "available" or lot.remaining <= 0:
                continue
            take = min(need, lot.remaining)
            lot.remaining -= take
            need -= take
            taken[lot.order_id] = take
            self._touch(lot)
        if need:  # lots were read after a concurrent change of the balance: the commit would fail
            raise StaleBook("available lots do not cover the available balance")
        self.balance.available -= points
        return taken

    def _settle_debt(self, lot: Lot) -> int:
        """Use this lot's remaining points to settle debt first; returns the points settled."""
        settle = min(self.balance.debt, lot.remaining)
        if settle:
            self._debit_lot(lot, settle)
            lot.settled_debt += settle
            self.balance.debt -= settle
        return settle

    def settle_debt(self, order_id: str) -> int:
        """Settle debt from an order's pending or available lot; returns the points settled."""
        lot = self.lots[order_id]
        return self._settle_debt(lot) if lot.status in {"pending", "available"} else 0

    def _credit(self, lot: Lot, points: int) -> None:
        if lot.status == "pending":
            self.balance.pending += points
        else:
            self.balance.available += points

    def _debit_lot(self, lot: Lot, points: int) -> None:
        lot.remaining -= points
        if lot.status == "pending":
            self.balance.pending -= points
        else:
            self.balance.available -= points
        self._touch(lot)

    # -- earning -------------------------------------------------------------------------------
    def earn(
        self,
        *,
        event_id: str,
        channel: str,
        order_id: str,
        occurred_at: datetime,
        order_total: Decimal,
        currency: str,
        earning: Earning,
        policy: Policy,
        waiting: Iterable[RefundRequest] = (),
    ) -> Lot | None:
        """Credit an order's points as a new pending lot; None when the order already earned."""
        if order_id in self.lots:
            return None
        pending_until = occurred_at + policy.window(channel)
        lot = Lot(
            customer_id=self.balance.customer_id,
            order_id=order_id,
            channel=channel,
            event_id=event_id,
            occurred_at=occurred_at.isoformat(),
            pending_until=pending_until.isoformat(),
            expires_on=(occurred_at + timedelta(days=policy.expiry_days)).isoformat(),
            points=earning.line_points + earning.bonus_points,
            remaining=earning.line_points + earning.bonus_points,
            status="pending" if pending_until > self.now else "available",
            lines={
                line_id: LineEarning(sku, qty, pts, [p.rule_id for p in parts])
                for line_id, (sku, qty, pts, parts) in earning.lines.items()
            },
            bonus=earning.bonus_points,
            bonus_rule_ids=[part.rule_id for _, part in earning.bonuses],
            order_total=str(order_total),
            currency=currency,
            own_entries=True,
            earned_at=self.now.isoformat(),
            bonus_parts={part.rule_id: part.points for _, part in earning.bonuses},
        )
        self.lots[order_id] = lot
        self.folding.add(order_id)  # the lot is its own earn (and bonus) entry
        self._touch(lot)
        bal = self.balance
        self._credit(lot, lot.points)
        bal.lifetime_earned += lot.points
        bal.buckets[lot.month] = bal.buckets.get(lot.month, 0) + lot.points
        previous = bal.channels.get(channel)
        if previous is None or previous < lot.occurred_at:
            bal.channels[channel] = lot.occurred_at
        if earning.omni_awarded:
            lot.omni_period = omni_period(occurred_at)
            bal.omni_periods = _with_period(bal.omni_periods, lot.omni_period)
        for refund in waiting:
            self.reverse(order_id, refund)
        self._settle_debt(lot)
        return lot

    # -- reversal ------------------------------------------------------------------------------
    def _points_to_reverse(self, lot: Lot, refund: RefundRequest) -> tuple[int, int, int]:
        """(line points, bonus points, amount-based points) this refund reverses, cumulatively exact."""
        if refund.full:
            lines = sum(line.points - line.reversed for line in lot.lines.values())
            for line in lot.lines.values():
                line.refunded_qty = line.quantity
                line.reversed = line.points
            return lines, lot.bonus - lot.bonus_reversed, 0
        line_points = 0
        for line_id, qty in refund.lines.items():
            returned = lot.lines.get(line_id)
            if returned is None:
                continue
            returned.refunded_qty = min(returned.quantity, returned.refunded_qty + qty)
            target = returned.points * returned.refunded_qty // returned.quantity
            line_points += target - returned.reversed
            returned.reversed = target
        amount_points = 0
        if not refund.lines and refund.amount > 0:
            total = Decimal(lot.order_total)
            refunded = min(total, Decimal(lot.refunded_amount) + refund.amount)
            lot.refunded_amount = str(refunded)
            unreversed = sum(line.points - line.reversed for line in lot.lines.values())
            base = unreversed + lot.amount_reversed
            target = int(base * refunded / total) if total else base
            amount_points = min(unreversed, max(0, target - lot.amount_reversed))
            lot.amount_reversed += amount_points
        bonus = 0
        if lot.lines and all(line.refunded_qty >= line.quantity for line in lot.lines.values()):
            bonus = lot.bonus - lot.bonus_reversed
        return line_points, bonus, amount_points

    def reverse(self, order_id: str, refund: RefundRequest) -> int:
        """Reverse the points of the refunded lines of ``order_id``; returns the points reversed."""
        lot = self.lots[order_id]
        if refund.refund_key in lot.refund_keys:
            return 0
        lot.refund_keys.append(refund.refund_key)
        self._touch(lot)
        line_points, bonus, amount_points = self._points_to_reverse(lot, refund)
        lot.bonus_reversed += bonus
        points = line_points + bonus + amount_points
        if points <= 0:
            return 0
        lot.reversed += points
        bal = self.balance
        bal.lifetime_earned -= points
        bal.buckets[lot.month] = max(0, bal.buckets.get(lot.month, 0) - points)
        from_lot = min(points, lot.remaining)
        self._debit_lot(lot, from_lot)
        already_expired = min(points - from_lot, lot.expired_unclaimed)
        lot.expired_unclaimed -= already_expired
        rest = points - from_lot - already_expired
        from_others = min(rest, bal.available)
        taken = self._take_available(from_others, exclude=order_id) if from_others else {}
        bal.debt += rest - from_others
        if lot.reversed >= lot.points and lot.remaining == 0 and lot.status in {"pending", "available"}:
            lot.status = "reversed"
        clawed = from_lot + from_others + (rest - from_others)
        self._entry(
            "reverse",
            -clawed,
            event_id=refund.event_id,
            order_id=order_id,
            channel=refund.channel,
            rule_ids=sorted({rid for line in lot.lines.values() for rid in line.rule_ids}),
            lines=[
                {"line_id": lid, "quantity": qty, "points": lot.lines[lid].reversed}
                for lid, qty in refund.lines.items()
                if lid in lot.lines
            ],
            lots={order_id: from_lot, **taken},
            note=_reverse_note(points, bonus, already_expired, rest - from_others),
        )
        return clawed

    # -- maturing and expiry ---------------------------------------------------------------------
    def release(self, order_id: str) -> int:
        """Pending -> available once the return window passed (debt settled first)."""
        lot = self.lots[order_id]
        if lot.status != "pending" or datetime.fromisoformat(lot.pending_until) > self.now:
            return 0
        points = lot.remaining
        self.balance.pending -= points
        lot.status = "available" if lot.points > lot.reversed else "reversed"
        self.balance.available += points
        self._touch(lot)
        self._settle_debt(lot)
        return points

    def expire(self, order_id: str) -> int:
        """Expire what is left of a lot past its expiry date (an ``expire`` entry)."""
        lot = self.lots[order_id]
        if datetime.fromisoformat(lot.expires_on) > self.now or lot.status == "expired":
            return 0
        if lot.status == "pending":
            self.release(order_id)
        points = lot.remaining
        if points:
            self._debit_lot(lot, points)
            lot.expired_unclaimed += points
            self._entry(
                "expire",
                -points,
                order_id=order_id,
                channel=lot.channel,
                event_id=lot.event_id,
                lots={order_id: points},
                note=f"earned {lot.occurred_at[:10]}, expired {lot.expires_on[:10]}",
            )
        lot.status = "expired"
        self._touch(lot)
        return points

    # -- redemption ----------------------------------------------------------------------------
    def redeem(
        self, points: int, redemption_id: str, channel: str | None, note: str | None
    ) -> dict[str, int]:
        """Spend available points, oldest lots first; never more than available."""
        if points > self.balance.available:
            raise InsufficientPoints(
                f"{points} points requested, {self.balance.available} available", field="points"
            )
        taken = self._take_available(points)
        self._entry("redeem", -points, redemption_id=redemption_id, channel=channel, lots=taken, note=note)
        return taken

    def cancel_redemption(self, redemption_id: str, lots: dict[str, int]) -> int:
        """Give a redemption's points back to the lots they came from; returns the points returned.

        Points of a lot that expired meanwhile are not returned. Points of a lot that was
        reversed since (a refund clawed them back) settle debt first, then go to the newest
        available lot. Debt is settled from returned points first, as from any earning.
        """
        self.all_lots()
        returned: dict[str, int] = {}
        expired = orphan = 0
        for order_id, points in lots.items():
            lot = self.lots.get(order_id)
            if lot is not None and (lot.status == "expired" or self._expired(lot)):
                expired += points
            elif lot is None or lot.status != "available":
                orphan += points
            else:
                self._give_back(lot, points, returned)
        settled = min(orphan, self.balance.debt)
        self.balance.debt -= settled
        rest = orphan - settled
        open_lots = [
            lot for lot in self.lots.values() if lot.status == "available" and not self._expired(lot)
        ]
        if rest and open_lots:
            self._give_back(max(open_lots, key=_fifo_key), rest, returned)
            rest = 0
        total = sum(returned.values()) + settled
        for order_id in returned:
            self._settle_debt(self.lots[order_id])
        notes = ["redemption cancelled"]
        if settled:
            notes.append(f"{settled} settled debt (their lot was refunded)")
        if expired or rest:
            notes.append(f"{expired + rest} not returned (expired or refunded meanwhile)")
        self._entry("adjust", total, redemption_id=redemption_id, lots=returned, note="; ".join(notes))
        return total

    def _expired(self, lot: Lot) -> bool:
        return datetime.fromisoformat(lot.expires_on) <= self.now

    def _give_back(self, lot: Lot, points: int, returned: dict[str, int]) -> None:
        lot.remaining += points
        self.balance.available += points
        returned[lot.order_id] = returned.get(lot.order_id, 0) + points
        self._touch(lot)

    # -- merges ---------------------------------------------------------------------------------
    def move_lots_to(self, other: Book, order_ids: list[str], merge_id: str) -> int:
        """Move lots (with their balance, tier and history contributions) to ``other``'s book."""
        moved_points = 0
        moved: dict[str, int] = {}
        for order_id in order_ids:
            lot = self.lots.pop(order_id)
            self.dirty.discard(order_id)
            self.folding.discard(order_id)
            self.removed.add(order_id)
            if lot.own_entries:  # its earning's entries stay in this ledger, as entry items
                self.entries += [replace(e, customer_id=self.balance.customer_id) for e in lot.own_ledger()]
                lot.own_entries = False
            if lot.status == "pending":
                self.balance.pending -= lot.remaining
            elif lot.status == "available":
                self.balance.available -= lot.remaining
            self.balance.lifetime_earned -= lot.qualifying
            self.balance.buckets[lot.month] = max(0, self.balance.buckets.get(lot.month, 0) - lot.qualifying)
            lot.customer_id = other.balance.customer_id
            # the customer it was moved from: an unmerge moves back what came from that customer
            # (with what that customer had absorbed before); notifications ignore moved lots
            lot.origin_customer_id = self.balance.customer_id
            other.lots[order_id] = lot
            other.removed.discard(order_id)
            other._touch(lot)
            if lot.status in {"pending", "available"}:
                other._credit(lot, lot.remaining)
            other.balance.lifetime_earned += lot.qualifying
            other.balance.buckets[lot.month] = other.balance.buckets.get(lot.month, 0) + lot.qualifying
            if lot.status in {"pending", "available"}:
                moved_points += lot.remaining
                moved[order_id] = lot.remaining
        for chan, at in self.balance.channels.items():
            if other.balance.channels.get(chan, "") < at:
                other.balance.channels[chan] = at
        if moved_points or moved:
            origin = self.balance.customer_id
            self._entry(
                "merge_transfer",
                -moved_points,
                merge_id=merge_id,
                lots=moved,
                note=f"lots moved to {other.balance.customer_id}",
            )
            other._entry(
                "merge_transfer",
                moved_points,
                merge_id=merge_id,
                lots=moved,
                origin_customer_id=origin,
                note=f"lots moved from {origin}",
            )
        return moved_points

    def move_debt_to(self, other: Book, debt: int, merge_id: str) -> None:
        """Carry ``debt`` over to ``other`` (it is settled by the other customer's later earnings)."""
        if debt <= 0:
            return
        self.balance.debt -= debt
        other.balance.debt += debt
        self._entry(
            "merge_transfer", debt, merge_id=merge_id, note=f"debt moved to {other.balance.customer_id}"
        )
        other._entry(
            "merge_transfer",
            -debt,
            merge_id=merge_id,
            origin_customer_id=self.balance.customer_id,
            note=f"debt moved from {self.balance.customer_id}",
        )

    def copy(self) -> Book:
        return copy.deepcopy(self)


def _with_period(periods: list[str], period: str) -> list[str]:
    """The months an omnichannel bonus was won in, with ``period`` (the last 13 kept)."""
    return sorted({*periods, period})[-13:]


def _reverse_note(points: int, bonus: int, expired: int, debt: int) -> str:
    parts = [f"{points} points returned"]
    if bonus:
        parts.append(f"incl. {bonus} order bonus")
    if expired:
        parts.append(f"{expired} had already expired")
    if debt:
        parts.append(f"{debt} carried as debt")
    return "; ".join(parts)
