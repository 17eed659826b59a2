"""Points use cases: apply routed events and merges, redeem, view, and the scheduled jobs."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from loyalty.customers import customer_pk
from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.models.events import CancelPayload, ChannelEvent, OrderPayload, RefundPayload
from loyalty.models.merges import CustomerMerged
from loyalty.points.ledger import Book, Policy, RefundRequest
from loyalty.points.model import (
    EXPIRING_ENTITY,
    MERGE_ENTITY,
    TIERS,
    Balance,
    Lot,
    balance_sk,
    expiring_sk,
    merge_sk,
    waiting_sk,
)
from loyalty.points.rules import (
    DEFAULT_RULES,
    AccrualRule,
    Earning,
    PurchaseHistory,
    RuleKind,
    compute_earning,
    omni_period,
)
from loyalty.points.store import AlreadyApplied, PointsStore, StaleBook
from loyalty.points.tiers import THRESHOLDS, qualifying_points, review, tier_for, upgrade
from loyalty.retry import retry
from loyalty.routing.router import RoutedEvent
from loyalty.settings import Settings, get_settings

MAX_ATTEMPTS = 30
#: an outcome of ``_earn``: the earning needs a transaction, and its book was read eventually consistent
READ_AGAIN = "read_again"
MERGE_CHUNK = 30
RULES_TTL_S = 60.0
#: order-level bonuses decided from the purchase history: the order that claims one first wins it
HISTORY_BONUSES = frozenset({RuleKind.FIRST_CHANNEL_PURCHASE, RuleKind.OMNICHANNEL})
_REDEMPTION_NS = uuid.UUID("0b6f3f0e-9d0c-4f51-8c2e-51e7d5a1c3aa")

Clock = Callable[[], datetime]


def policy_from(settings: Settings) -> Policy:
    try:
        windows = {str(k): int(v) for k, v in json.loads(settings.points_return_windows or "{}").items()}
    except (ValueError, AttributeError) as err:
        raise InvalidInput("POINTS_RETURN_WINDOWS must be a JSON object {channel: days}") from err
    return Policy(
        return_windows=windows,
        default_return_window_days=settings.points_return_window_days,
        expiry_days=settings.points_expiry_days,
        expiry_warning_days=settings.points_expiry_warning_days,
    )


@dataclass
class JobReport:
    """What a scheduled run did, and whether it finished (False: resume from the saved cursor)."""

    job: str
    complete: bool = True
    customers: int = 0
    lots: int = 0
    points: int = 0
    flagged: int = 0
    days: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


_rules_cache: tuple[float, list[AccrualRule]] | None = None


def clear_rules_cache() -> None:
    global _rules_cache  # noqa: PLW0603 - a per-container cache, reset by tests and admin writes
    _rules_cache = None


class PointsService:
    def __init__(
        self,
        store: PointsStore | None = None,
        clock: Clock | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = store or PointsStore()
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.settings = settings or get_settings()
        self.policy = policy_from(self.settings)

    # -- rules ----------------------------------------------------------------------------------
    def rules(self) -> list[AccrualRule]:
        """Active rules (cached a minute per container); the defaults are seeded on first use."""
        global _rules_cache  # noqa: PLW0603
        if _rules_cache and time.monotonic() - _rules_cache[0] < RULES_TTL_S:
            return _rules_cache[1]
        rules, seeded = self.store.rules()
        if not seeded:
            self.seed_default_rules()
            rules, _ = self.store.rules()
        active = [r for r in rules if r.active]
        _rules_cache = (time.monotonic(), active)
        return active

    def seed_default_rules(self) -> int:
        """Put the default rule set, each rule only if absent (idempotent); returns rules added."""
        now = self.clock()
        added = 0
        for rule in DEFAULT_RULES:
            added += self.store.put_new({**rule.to_item(), "created_at": now.isoformat()})
        self.store.mark_seeded(now)
        clear_rules_cache()
        return added

    def create_rule(self, rule: AccrualRule) -> AccrualRule:
        self.store.create_rule(rule, self.clock())
        clear_rules_cache()
        return rule

    def list_rules(self, include_inactive: bool = True) -> list[AccrualRule]:
        rules, seeded = self.store.rules()
        if not seeded:
            self.seed_default_rules()
            rules, _ = self.store.rules()
        return rules if include_inactive else [r for r in rules if r.active]

    def deactivate_rule(self, rule_id: str) -> AccrualRule:
        rule = self.store.deactivate_rule(rule_id, self.clock())
        clear_rules_cache()
        return rule

    # -- events -----------------------------------------------------------------------------------
    def apply(self, routed: RoutedEvent) -> str:
        """Apply one attributed order event to its (resolved) customer's ledger, exactly once."""
        if not routed.customer_id:
            raise InvalidInput("points need an attributed event (customer_id)", field="customer_id")
        if not isinstance(routed.event.payload, OrderPayload | RefundPayload | CancelPayload):
            return "ignored"
        customer_id = routed.customer_id
        return retry(
            lambda n: self._apply_once(routed, customer_id, consistent=n > 0),
            attempts=MAX_ATTEMPTS,
            on=StaleBook,
            what=f"ledger of {customer_id}",
        )

    def _apply_once(self, routed: RoutedEvent, routed_customer: str, *, consistent: bool) -> str:
        """One attempt; an order's first attempt decides on an eventually consistent read.

        What a stale read can get wrong about a plain earning is caught after the put: the lot's
        ``attribute_not_exists`` refuses the order twice, the consistent re-read finds a REDIRECT,
        a waiting refund, debt or a tier reached meanwhile, and the bonus claims decide who wins a
        history bonus. Anything that commits a book (a transaction) reads it again consistently.
        """
        # the REDIRECT of an absorbed customer is read with the book (an order's query of its lots,
        # a refund's BatchGetItem); a merge committed meanwhile bumps the absorbed balance's version,
        # so the retry sees the REDIRECT and credits the survivor (a plain earning checks after its put)
        event, payload, now = routed.event, routed.event.payload, self.clock()
        assert isinstance(payload, OrderPayload | RefundPayload | CancelPayload)
        earning = isinstance(payload, OrderPayload)
        consistent = consistent or not earning
        book = self.store.load(routed_customer, now, [payload.order_id], full=earning, consistent=consistent)
        if book.redirect_to:
            survivor = self.store.resolve(book.redirect_to)
            book = self.store.load(survivor, now, [payload.order_id], full=earning, consistent=consistent)
        customer_id = book.balance.customer_id
        if isinstance(payload, OrderPayload):
            lot = book.lots.get(payload.order_id)
            if lot is not None and lot.event_id == event.event_id:
                return "duplicate"  # the order's lot is this event's own record
            outcome, plain = self._earn(book, routed, payload, consistent=consistent)
            if outcome == READ_AGAIN:
                return self._apply_once(routed, routed_customer, consistent=True)
            if plain:
                return self._put_earning(book.lots[payload.order_id], event.event_id)
        else:
            outcome = self._refund(book, routed, payload)
        retention = self.settings.event_retention_days
        if not book.changed or (earning and outcome != "earned"):  # (an order's book only folded)
            recorded = self.store.record_outcome(customer_id, event.event_id, outcome, now, retention)
            return outcome if recorded else "duplicate"
        if outcome != "earned":  # an earning's new lot (put at the balance's version) is its dedupe key
            book.puts.append(
                (self.store.dedupe_item(customer_id, event.event_id, outcome, now, retention), True)
            )
        try:
            self.store.commit([book])
        except AlreadyApplied:
            return "duplicate"
        if outcome == "refund_waiting_for_order":  # an order put meanwhile (plain) did not see it
            self._settle_after_put(customer_id, payload.order_id)
        return outcome

    # -- an earning as one plain write ------------------------------------------------------------
    def _put_earning(self, lot: Lot, event_id: str) -> str:
        if not self.store.put_lot(lot):  # the order's lot exists: this event's, or another's
            found = self.store.lot(lot.customer_id, lot.order_id)
            same = found is not None and found.event_id == event_id
            return "duplicate" if same else "order_already_credited"
        self._settle_after_put(lot.customer_id, lot.order_id)
        return "earned"

    def _settle_after_put(self, customer_id: str, order_id: str) -> None:
        """Re-read the book after a plain lot put (or a refund left waiting for its order).

        Each side writes, then reads the other's item with strongly consistent reads, so of an
        earning and a refund (or a merge, or another earning) racing it at least one sees both
        and finishes the work in a transaction: the lot moves to the survivor of a merge, waiting
        refunds are applied, debt is settled, a tier reached together is raised.
        """

        def attempt(_: int) -> None:
            book = self.store.load(customer_id, self.clock(), [order_id], full=True)
            if book.redirect_to:
                self._adopt(customer_id, order_id)
                return
            lot = book.lots.get(order_id)
            if lot is None:
                return
            waiting = book.waiting.get(order_id, [])
            debt = book.balance.debt > 0 and lot.remaining > 0
            if not (waiting or debt or _tier_due(book.balance, book.now)):
                return
            for refund in waiting:
                book.reverse(order_id, refund)
            if waiting:
                book.deletes.append((customer_pk(customer_id), waiting_sk(order_id)))
            book.settle_debt(order_id)
            change = upgrade(book.balance, book.now)
            if change:
                book.puts.append((change, True))
            self.store.commit([book])

        retry(attempt, attempts=MAX_ATTEMPTS, on=StaleBook, what=f"ledger of {customer_id}")

    def _adopt(self, absorbed: str, order_id: str) -> None:
        """A lot put on a customer absorbed meanwhile moves to the survivor (as the merge would)."""
        now = self.clock()
        src = self.store.load(absorbed, now, [order_id])
        lot = src.lots.get(order_id)
        if lot is None or src.redirect_to is None or lot.status == "reversed":
            return
        dst = self.store.load(self.store.resolve(src.redirect_to), now, [order_id])
        if order_id in dst.lots:  # credited to both: keep the survivor's
            src.reverse(order_id, RefundRequest(f"merge-late-{order_id}", "", "", full=True))
        else:
            src.move_lots_to(dst, [order_id], f"late-{order_id}")
        self.store.commit([src, dst])

    def _earn(
        self, book: Book, routed: RoutedEvent, order: OrderPayload, *, consistent: bool
    ) -> tuple[str, bool]:
        """The earning in the book; True when the order's new lot alone can record it (``plain``).

        Not plain when the balance item must change with it: refunds waiting for the order, debt
        to settle, a tier to raise (or a review to schedule). Such an earning is a transaction on
        the balance's version, over a book read consistently (``READ_AGAIN`` when it was not).
        An order-level bonus decided from the purchase history (first purchase in a channel,
        omnichannel) goes to the order that claims it first (``_claim_history_bonuses``).
        """
        event = routed.event
        if order.order_id in book.lots:
            return "order_already_credited", False
        earning = compute_earning(
            order,
            event.channel.value,
            event.occurred_at,
            self.rules(),
            PurchaseHistory(book.balance.channels, book.balance.omni_periods),
        )
        if not earning.supported:
            return "unsupported_currency", False
        waiting = book.waiting.get(order.order_id, [])
        debt = book.balance.debt
        # the tier with every bonus won: losing a claim only lowers the points
        month = event.occurred_at.isoformat()[:7]
        points = earning.line_points + earning.bonus_points
        reached = replace(book.balance, buckets={**book.balance.buckets})
        reached.buckets[month] = reached.buckets.get(month, 0) + points
        plain = not (waiting or debt or _tier_due(reached, book.now))
        if not (plain or consistent):
            return READ_AGAIN, False
        earning = self._claim_history_bonuses(book.balance.customer_id, order.order_id, event, earning)
        lot = book.earn(
            event_id=event.event_id,
            channel=event.channel.value,
            order_id=order.order_id,
            occurred_at=event.occurred_at,
            order_total=order.total,
            currency=order.currency,
            earning=earning,
            policy=self.policy,
            waiting=waiting,
        )
        pk = customer_pk(book.balance.customer_id)
        if waiting:
            book.deletes.append((pk, waiting_sk(order.order_id)))
        change = upgrade(book.balance, book.now)
        if change:
            book.puts.append((change, True))
        return "earned", plain and lot is not None

    def _claim_history_bonuses(
        self, customer_id: str, order_id: str, event: ChannelEvent, earning: Earning
    ) -> Earning:
        """The earning without the history bonuses another order of the customer claimed first.

        One claim item per bonus kind and scope (the channel of a first purchase, the month of an
        omnichannel bonus), put only if absent: of racing orders that each saw the bonus as due,
        exactly one keeps it, with or without a transaction on the balance.
        """
        won: dict[RuleKind, bool] = {}
        for kind, _ in earning.bonuses:
            if kind in HISTORY_BONUSES and kind not in won:
                scope = (
                    event.channel.value
                    if kind is RuleKind.FIRST_CHANNEL_PURCHASE
                    else omni_period(event.occurred_at)
                )
                won[kind] = self.store.claim_bonus(customer_id, kind.value, scope, order_id, self.clock())
        return replace(earning, bonuses=[(k, part) for k, part in earning.bonuses if won.get(k, True)])

    def _refund(self, book: Book, routed: RoutedEvent, payload: RefundPayload | CancelPayload) -> str:
        event = routed.event
        if isinstance(payload, CancelPayload):
            refund = RefundRequest("cancel", event.event_id, event.channel.value, full=True)
        else:
            lines: dict[str, int] = defaultdict(int)
            for line in payload.lines:
                lines[line.line_id] += line.quantity
            refund = RefundRequest(
                f"refund-{payload.refund_id}",
                event.event_id,
                event.channel.value,
                dict(lines),
                payload.amount,
            )
        lot = book.lots.get(payload.order_id)
        if lot is None:
            waiting = book.waiting.get(payload.order_id, [])
            if any(r.refund_key == refund.refund_key for r in waiting):
                return "refund_waiting_for_order"  # the same refund again: nothing changes
            item = self.store.waiting_item(
                book.balance.customer_id,
                payload.order_id,
                [*waiting, refund],
                book.now,
                self.settings.event_retention_days,
            )
            book.puts.append((item, False))  # bumps the balance version: an order racing it re-reads
            return "refund_waiting_for_order"
        reversed_points = book.reverse(payload.order_id, refund)
        return "reversed" if reversed_points or book.changed else "nothing_to_reverse"

    # -- merges ------------------------------------------------------------------------------------
    def apply_merge(self, merged: CustomerMerged) -> list[str]:
        """Move the ledger of each absorbed customer to the survivor (or back), once per pair."""
        return [self._merge_one(merged, absorbed) for absorbed in merged.absorbed_ids]

    def _merge_one(self, merged: CustomerMerged, absorbed: str) -> str:
        survivor = merged.survivor_id
        marker = merge_sk(merged.merge_id, absorbed, merged.kind)
        src_id, dst_id = (absorbed, survivor) if merged.kind == "merge" else (survivor, absorbed)

        def step(_: int) -> str | None:
            """One chunk of lots moved: the outcome once the merge is done, else None."""
            if self.store.exists(customer_pk(survivor), marker):
                return "duplicate"
            if src_id == dst_id:
                return "same_customer"
            try:
                final = self._merge_step(merged, absorbed, src_id, dst_id, marker)
            except AlreadyApplied:
                return "duplicate"
            return merged.kind if final else None

        while True:  # each chunk retried on its own
            outcome = retry(step, attempts=MAX_ATTEMPTS, on=StaleBook, what=f"merge {merged.merge_id}")
            if outcome is not None:
                return outcome

    def _merge_step(
        self, merged: CustomerMerged, absorbed: str, src_id: str, dst_id: str, marker: str
    ) -> bool:
        """Move up to MERGE_CHUNK lots in one transaction; True when this was the last step."""
        now = self.clock()
        src, dst = self.store.load_full(src_id, now), self.store.load_full(dst_id, now)
        if merged.kind == "merge":
            order_ids = sorted(src.lots)
            for order_id in [o for o in order_ids if o in dst.lots]:  # credited to both: keep one
                src.reverse(order_id, RefundRequest(f"merge-{merged.merge_id}", "", "", full=True))
            order_ids = [o for o in order_ids if o not in dst.lots]
        else:
            order_ids = sorted(o for o, lot in src.lots.items() if lot.origin_customer_id == absorbed)
        chunk, final = order_ids[:MERGE_CHUNK], len(order_ids) <= MERGE_CHUNK
        src.move_lots_to(dst, chunk, merged.merge_id)
        if final:
            self._finish_merge(merged, src, dst, f"{merged.merge_id}#{absorbed}")
            marker_item = {
                "pk": customer_pk(merged.survivor_id),
                "sk": marker,
                "entity": MERGE_ENTITY,
                "customer_id": merged.survivor_id,
                "absorbed_id": absorbed,
                "merge_id": merged.merge_id,
                "kind": merged.kind,
                "at": now.isoformat(),
            }
            dst.puts.append((marker_item, True))
        self.store.commit([src, dst])
        return final

    def _finish_merge(self, merged: CustomerMerged, src: Book, dst: Book, debt_key: str) -> None:
        if merged.kind == "merge":
            debt = src.balance.debt
            src.move_debt_to(dst, debt, merged.merge_id)
            if debt:
                dst.balance.merged_debt[debt_key] = debt
            src_pk, dst_pk = customer_pk(src.balance.customer_id), customer_pk(dst.balance.customer_id)
            kept = self.store.waiting_refunds(dst.balance.customer_id)
            for order_id, refunds in self.store.waiting_refunds(src.balance.customer_id).items():
                src.deletes.append((src_pk, waiting_sk(order_id)))
                kept[order_id] = [*kept.get(order_id, []), *refunds]
            for order_id, refunds in kept.items():
                if order_id in dst.lots:
                    for refund in refunds:
                        dst.reverse(order_id, refund)
                    dst.deletes.append((dst_pk, waiting_sk(order_id)))
                else:
                    dst.puts.append(
                        (
                            self.store.waiting_item(
                                dst.balance.customer_id,
                                order_id,
                                refunds,
                                dst.now,
                                self.settings.event_retention_days,
                            ),
                            False,
                        )
                    )
        else:
            debt = min(src.balance.merged_debt.pop(debt_key, 0), src.balance.debt)
            src.move_debt_to(dst, debt, merged.merge_id)
        change = upgrade(dst.balance, dst.now)
        if change:
            dst.puts.append((change, True))

    # -- redemption ----------------------------------------------------------------------------------
    def redeem(
        self, customer_id: str, points: int, idempotency_key: str, channel: str | None, note: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Spend points once per idempotency key; (redemption, True when this was a replay)."""
        customer_id = self.store.resolve(customer_id)
        rid = "r_" + uuid.uuid5(_REDEMPTION_NS, f"{customer_id}:{idempotency_key}").hex[:24]

        def attempt(_: int) -> tuple[dict[str, Any], bool]:
            existing = self.store.redemption(customer_id, rid)
            if existing is not None:
                if existing["points"] != points or existing.get("channel") != channel:
                    raise Conflict(
                        "Idempotency-Key already used for a different redemption",
                        code="idempotency_key_reused",
                        field="Idempotency-Key",
                    )
                return existing, True
            book = self.store.load_full(customer_id, self.clock())  # lots not folded yet count too
            taken = book.redeem(points, rid, channel, note)
            item = self.store.redemption_item(
                customer_id,
                rid,
                status="redeemed",
                points=points,
                channel=channel,
                note=note,
                lots=taken,
                idempotency_key=idempotency_key,
                created_at=book.now.isoformat(),
            )
            book.puts.append((item, True))
            self.store.commit([book])
            return item, False

        # a concurrent replay of the same key commits first: AlreadyApplied, read it next time
        return retry(
            attempt, attempts=MAX_ATTEMPTS, on=(StaleBook, AlreadyApplied), what=f"ledger of {customer_id}"
        )

    def cancel_redemption(self, customer_id: str, redemption_id: str) -> dict[str, Any]:
        """Return a redemption's points to the customer (idempotent: cancelling twice is a no-op)."""
        customer_id = self.store.resolve(customer_id)

        def attempt(_: int) -> dict[str, Any]:
            item = self.store.redemption(customer_id, redemption_id)
            if item is None:
                raise NotFound(f"redemption {redemption_id} not found", code="redemption_not_found")
            if item["status"] == "cancelled":
                return item
            book = self.store.load(customer_id, self.clock())
            returned = book.cancel_redemption(redemption_id, {k: int(v) for k, v in item["lots"].items()})
            item = {**item, "status": "cancelled", "returned": returned, "cancelled_at": book.now.isoformat()}
            book.puts.append((item, False))
            self.store.commit([book])
            return item

        return retry(attempt, attempts=MAX_ATTEMPTS, on=StaleBook, what=f"ledger of {customer_id}")

    # -- views ----------------------------------------------------------------------------------------
    def points(self, customer_id: str) -> dict[str, Any]:
        """Balance, debt, tier (and how far to the next) and the lots with their ages."""
        resolved = self.store.resolve(customer_id)
        now = self.clock()
        book = self.store.snapshot(resolved, now)
        balance = book.balance if book.exists or book.lots else None
        if balance is None and not self.store.profile_exists(resolved):
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
        lots = list(book.lots.values())
        qualifying = qualifying_points(balance.buckets, now) if balance else 0
        tier = balance.tier if balance else "bronze"
        higher = [t for t, v in THRESHOLDS.items() if v > THRESHOLDS[tier_for(qualifying)]]
        return {
            "customer_id": resolved,
            "requested_id": customer_id,
            "available": balance.available if balance else 0,
            "pending": balance.pending if balance else 0,
            "debt": balance.debt if balance else 0,
            "lifetime_earned": balance.lifetime_earned if balance else 0,
            "tier": tier,
            "qualifying_points_12m": qualifying,
            "next_tier": higher[0] if higher else None,
            "points_to_next_tier": THRESHOLDS[higher[0]] - qualifying if higher else 0,
            "downgrade_since": balance.downgrade_since if balance else None,
            "lots": [_lot_view(lot, now) for lot in sorted(lots, key=lambda lot: lot.occurred_at)],
        }

    def ledger(self, customer_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """Entries newest first, each with its cause (event, order, channel, rules, lines, lots)."""
        if not 1 <= limit <= 100:
            raise InvalidInput("limit must be 1..100", field="limit")
        resolved = self.store.resolve(customer_id)
        entries, next_cursor = self.store.entries(resolved, limit, cursor)
        unknown = (
            not entries and cursor is None and not self.store.exists(customer_pk(resolved), balance_sk())
        )
        if unknown and not self.store.profile_exists(resolved):
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
        return {
            "customer_id": resolved,
            "entries": [
                {
                    k: v
                    for k, v in e.__dict__.items()
                    if v not in (None, [], {}) and k not in {"version", "index"}
                }
                | {"seq": f"{e.version}.{e.index}"}
                for e in entries
            ],
            "next_cursor": next_cursor,
        }

    # -- scheduled jobs ---------------------------------------------------------------------------------
    def _days(self, job: str, today: date) -> list[date]:
        state = self.store.job_state(job)
        start = (
            date.fromisoformat(state["next_day"])
            if state.get("next_day")
            else today - timedelta(days=self.settings.points_job_lookback_days)
        )
        return [start + timedelta(days=i) for i in range((today - start).days + 1)]

    def _per_customer(self, customer_id: str, order_ids: list[str], op: Callable[[Book, str], int]) -> int:

        def attempt(_: int) -> int:
            book = self.store.load(customer_id, self.clock(), order_ids)
            points = sum(op(book, o) for o in order_ids if o in book.lots)
            if not book.changed:
                return 0
            self.store.commit([book])
            return points

        return retry(attempt, attempts=MAX_ATTEMPTS, on=StaleBook, what=f"ledger of {customer_id}")

    def _run_lots_job(
        self, job: str, pages: Callable[[date], Any], op: Callable[[Book, str], int], deadline: float
    ) -> JobReport:
        report = JobReport(job)
        today = self.clock().date()
        for day in self._days(job, today):
            for page in pages(day):
                by_customer: dict[str, list[str]] = defaultdict(list)
                for item in page:
                    by_customer[item["customer_id"]].append(item["order_id"])
                for customer_id, order_ids in by_customer.items():
                    points = self._per_customer(customer_id, order_ids, op)
                    report.customers += 1
                    report.lots += len(order_ids)
                    report.points += points
                if time.monotonic() > deadline:
                    self.store.save_job_state(job, next_day=day.isoformat())
                    report.complete = False
                    return report
            report.days.append(day.isoformat())
            self.store.save_job_state(job, next_day=min(day + timedelta(days=1), today).isoformat())
        return report

    def release_pending(self, budget_s: float = 600.0) -> JobReport:
        """Pending lots whose return window ended become available (day pages of GSI1 PTSDUE#)."""
        deadline = time.monotonic() + budget_s
        return self._run_lots_job("release", self.store.due_lots, lambda b, o: b.release(o), deadline)

    def expire_points(self, budget_s: float = 600.0) -> JobReport:
        """Expire lots past their date (GSI1 PTSEXP#), then flag customers whose points expire soon."""
        deadline = time.monotonic() + budget_s
        report = self._run_lots_job("expire", self.store.expiring_lots, lambda b, o: b.expire(o), deadline)
        if report.complete:
            report.flagged = self._flag_expiring(deadline)
        return report

    def _flag_expiring(self, deadline: float) -> int:
        """One ``points_expiring`` item per customer and run, for lots expiring in the warning window."""
        now = self.clock()
        target = now.date() + timedelta(days=self.policy.expiry_warning_days)
        totals: dict[str, int] = defaultdict(int)
        first: dict[str, str] = {}
        days = self._days("warn", target)
        if not days:
            return 0
        done = days[0] - timedelta(days=1)
        for day in days:  # at least one day per run; the cursor resumes after the last one read
            for page in self.store.expiring_lots(day):
                for item in page:
                    if item.get("status") == "available" and int(item.get("remaining", 0)) > 0:
                        totals[item["customer_id"]] += int(item["remaining"])
                        first.setdefault(item["customer_id"], day.isoformat())
            done = day
            if time.monotonic() > deadline:
                break
        flagged = 0
        for customer_id, points in totals.items():
            flagged += self.store.put_new(
                {
                    "pk": customer_pk(customer_id),
                    "sk": expiring_sk(now.date()),
                    "entity": EXPIRING_ENTITY,
                    "customer_id": customer_id,
                    "points": points,
                    "expires_on": first[customer_id],
                    "at": now.isoformat(),
                    "expires_at": int(
                        (now + timedelta(days=self.policy.expiry_warning_days + 7)).timestamp()
                    ),
                }
            )
        self.store.save_job_state("warn", next_day=(done + timedelta(days=1)).isoformat())
        return flagged

    def review_tiers(self, budget_s: float = 600.0) -> JobReport:
        """Re-evaluate tiers of balances due for review (GSI1 PTSTIER#): downgrade after the grace."""
        deadline = time.monotonic() + budget_s
        report = JobReport("tiers")
        today = self.clock().date()
        grace = self.settings.tier_downgrade_grace_days
        for day in self._days("tiers", today):
            for page in self.store.tier_reviews(day):
                for item in page:
                    report.customers += int(self._review_one(item["customer_id"], grace))
                if time.monotonic() > deadline:
                    self.store.save_job_state("tiers", next_day=day.isoformat())
                    report.complete = False
                    return report
            report.days.append(day.isoformat())
            self.store.save_job_state("tiers", next_day=min(day + timedelta(days=1), today).isoformat())
        return report

    def _review_one(self, customer_id: str, grace: int) -> bool:

        def attempt(_: int) -> bool:
            book = self.store.load_full(customer_id, self.clock())  # qualifying points of every lot
            change = review(book.balance, book.now, grace)
            if change:
                book.puts.append((change, True))
            self.store.commit([book])
            return change is not None

        return retry(attempt, attempts=MAX_ATTEMPTS, on=StaleBook, what=f"ledger of {customer_id}")


def _tier_due(balance: Balance, now: datetime) -> bool:
    """Whether ``upgrade`` would change the balance item (a higher tier, or a review to schedule)."""
    target = tier_for(qualifying_points(balance.buckets, now))
    due_review = balance.tier != "bronze" and balance.review_on is None
    return TIERS.index(target) > TIERS.index(balance.tier) or due_review


def _lot_view(lot: Lot, now: datetime) -> dict[str, Any]:
    occurred = datetime.fromisoformat(lot.occurred_at)
    return {
        "order_id": lot.order_id,
        "channel": lot.channel,
        "status": lot.status,
        "points": lot.points,
        "remaining": lot.remaining,
        "reversed": lot.reversed,
        "earned_at": lot.occurred_at,
        "age_days": max(0, (now - occurred).days),
        "pending_until": lot.pending_until,
        "expires_on": lot.expires_on,
        "origin_customer_id": lot.origin_customer_id,
    }
