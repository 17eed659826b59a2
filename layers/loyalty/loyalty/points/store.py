"""Points items in the single table: loading a customer's book and committing it atomically.

Every change of one customer's points is ONE transaction conditioned on the balance item's
``version`` (optimistic concurrency: the balance is the lock of the customer's ledger), which also
carries the event-id keyed dedupe record (``PTS#EV#<event_id>``, put only if new). Lots, entries
and the other items of the transaction need no condition of their own: nothing else writes them,
but for an ordinary earning: its lot alone, put only if the order has none (``put_lot``), not
folded into the balance item (readers add it: ``snapshot``); the next transaction folds it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from loyalty import customers
from loyalty.customers import REDIRECT_SK, customer_pk, profile_key, redirect_key
from loyalty.errors import Conflict, InvalidInput, NotFound, TransientError
from loyalty.points.ledger import Book, RefundRequest, StaleBook
from loyalty.points.model import (
    BONUS_CLAIM_ENTITY,
    DEDUPE_ENTITY,
    JOB_ENTITY,
    LOT_ENTITY,
    REDEMPTION_ENTITY,
    RULE_ENTITY,
    SHARDS,
    WAITING_ENTITY,
    Balance,
    Entry,
    Lot,
    balance_sk,
    bonus_claim_sk,
    day_shard_key,
    dedupe_sk,
    entry_sk,
    lot_sk,
    redemption_sk,
    waiting_sk,
)
from loyalty.points.rules import RULES_PK, AccrualRule
from loyalty.store.table import (
    Item,
    Table,
    TransactionCancelled,
    tx_delete,
    tx_put,
    tx_put_new,
)

__all__ = ["AlreadyApplied", "PointsStore", "StaleBook"]

MAX_ACTIONS = 100
SNAPSHOT_ATTEMPTS = 10
SEEDED_SK = "SEEDED"
#: sort keys from the first lot to the REDIRECT, in one query of the customer's collection: every
#: ``PTS#LOT#``, then ``PTS#MERGE#`` / ``PTS#RDM#`` / ``PTS#TIER#`` (read, not used), every
#: ``PTS#WAIT#`` and ``REDIRECT``; one read unit per 4 KB of them, where a BatchGetItem costs a
#: unit per key, found or not (the balance sorts before the entries: it stays a GetItem)
BOOK_RANGE = (lot_sk(""), REDIRECT_SK)


class AlreadyApplied(Exception):
    """A put-if-new item of the transaction exists: this change was applied before."""

    def __init__(self, sk: str) -> None:
        super().__init__(sk)
        self.sk = sk


def encode_cursor(key: Item | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_cursor(cursor: str | None) -> Item | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as err:
        raise InvalidInput("malformed cursor", field="cursor") from err
    if not isinstance(data, dict) or set(data) - {"pk", "sk", "gsi1pk", "gsi1sk"}:
        raise InvalidInput("malformed cursor", field="cursor")
    return data


class PointsStore:
    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()

    # -- customers ------------------------------------------------------------------------------
    def resolve(self, customer_id: str) -> str:
        """Follow ``REDIRECT`` items of absorbed customers to the survivor."""
        return customers.resolve(self.table, customer_id)

    def profile_exists(self, customer_id: str) -> bool:
        return self.table.get(*profile_key(customer_id), consistent=False) is not None

    # -- books ----------------------------------------------------------------------------------
    def _lots(self, customer_id: str, consistent: bool = True) -> list[Lot]:
        items = self.table.query_all(customer_pk(customer_id), sk_prefix="PTS#LOT#", consistent=consistent)
        return [Lot.from_item(i) for i in items]

    def load(
        self,
        customer_id: str,
        now: datetime,
        order_ids: list[str] | None = None,
        *,
        full: bool = False,
        consistent: bool = True,
    ) -> Book:
        """A customer's book: the balance and the given lots (``full``: every lot, read at once).

        Lots written by a plain put and not folded yet are folded into the book's balance as they
        load (``Book.fold``); a commit of the book writes them folded. ``consistent=False`` reads
        at half the units, items possibly stale and from different instants: only for deciding a
        plain earning, never for a book that is committed (``PointsService._apply_once``).
        """
        pk = customer_pk(customer_id)
        if order_ids and not full:
            keys = [(pk, balance_sk()), redirect_key(customer_id)]
            for order_id in order_ids:
                keys += [(pk, waiting_sk(order_id)), (pk, lot_sk(order_id))]
            items = self.table.batch_get(keys, consistent=consistent)
        else:
            items = [i for i in [self.table.get(pk, balance_sk(), consistent=consistent)] if i]
        if full:  # one query: every lot, the waiting refunds and the REDIRECT (``BOOK_RANGE``)
            items += self.table.query_all(pk, sk_between=BOOK_RANGE, consistent=consistent)
        balance_item = next((i for i in items if i["sk"] == balance_sk()), None)
        lots = [Lot.from_item(i) for i in items if i.get("entity") == LOT_ENTITY]
        balance = Balance.from_item(balance_item) if balance_item else Balance(customer_id=customer_id)
        more = None if full else lambda: self._lots(customer_id)
        book = Book(balance, lots, now, more, exists=balance_item is not None)
        for item in items:
            if item.get("entity") == WAITING_ENTITY and item["order_id"] in (order_ids or []):
                book.waiting[item["order_id"]] = self._refunds_of(item)
        book.redirect_to = customers.survivor_named(items)
        return book

    def load_full(self, customer_id: str, now: datetime) -> Book:
        return self.load(customer_id, now, full=True)

    def put_lot(self, lot: Lot) -> bool:
        """An earning as ONE plain write: the lot, not folded, put only if the order has none."""
        return self.table.put_new(replace(lot, folded=False).to_item())

    def claim_bonus(self, customer_id: str, kind: str, scope: str, order_id: str, at: datetime) -> bool:
        """Whether ``order_id`` wins the bonus of ``kind`` once per ``scope`` (put only if absent).

        The claim names its order, so a redelivery of the winning order (or a retry) wins again.
        """
        item = {
            "pk": customer_pk(customer_id),
            "sk": bonus_claim_sk(kind, scope),
            "entity": BONUS_CLAIM_ENTITY,
            "customer_id": customer_id,
            "order_id": order_id,
            "at": at.isoformat(),
        }
        if self.table.put_new(item):
            return True
        found = self.table.get(item["pk"], item["sk"])
        return found is not None and found.get("order_id") == order_id

    def lot(self, customer_id: str, order_id: str) -> Lot | None:
        item = self.table.get(customer_pk(customer_id), lot_sk(order_id))
        return Lot.from_item(item) if item else None

    def snapshot(self, customer_id: str, now: datetime) -> Book:
        """The book as a reader sees it: the balance item plus the lots not folded into it yet.

        The balance is read before and after the lots: a fold between them bumps its version, and
        the read starts over, so a lot is never counted twice nor missed (bounded, then the last).
        """
        pk = customer_pk(customer_id)
        before = self.table.get(pk, balance_sk())
        for _ in range(SNAPSHOT_ATTEMPTS):
            lots = self._lots(customer_id)
            after = self.table.get(pk, balance_sk())
            if (before or {}).get("version") == (after or {}).get("version"):
                break
            before = after
        else:
            raise TransientError(f"points of {customer_id} kept changing while read")
        balance = Balance.from_item(after) if after else Balance(customer_id=customer_id)
        return Book(balance, lots, now, exists=after is not None)

    def commit(self, books: list[Book]) -> None:
        """Write the books' changes in one transaction; StaleBook / AlreadyApplied on conflicts."""
        actions: list[dict[str, Any]] = []
        kinds: list[str] = []
        for book in books:
            bal = book.balance
            bal.version = (book.expected_version or 0) + 1
            bal.updated_at = book.now.isoformat()
            if book.expected_version is None:
                actions.append(tx_put(bal.to_item(), "attribute_not_exists(pk)"))
            else:
                actions.append(
                    tx_put(
                        bal.to_item(),
                        "#v = :v",
                        names={"#v": "version"},
                        values={":v": book.expected_version},
                    )
                )
            kinds.append("balance")
            first = book.place_folded(bal.version)
            for i, entry in enumerate(book.entries, start=first):
                entry.version, entry.index = bal.version, i
                actions.append(tx_put_new(entry.to_item()))
                kinds.append(entry.to_item()["sk"])
            for order_id in sorted(book.dirty):
                actions.append(tx_put(book.lots[order_id].to_item()))
                kinds.append("lot")
            for order_id in sorted(book.removed):
                actions.append(tx_delete(customer_pk(bal.customer_id), lot_sk(order_id)))
                kinds.append("lot")
            for item, new in book.puts:
                actions.append(tx_put_new(item) if new else tx_put(item))
                kinds.append(item["sk"] if new else "item")
            for pk, sk in book.deletes:
                actions.append(tx_delete(pk, sk))
                kinds.append("item")
        if len(actions) > MAX_ACTIONS:
            raise Conflict(f"change too large for one transaction ({len(actions)} items)", code="too_large")
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            failed = [kinds[i] for i, r in enumerate(err.reasons) if r == "ConditionalCheckFailed"]
            if "balance" in failed:
                raise StaleBook from err
            if failed:
                raise AlreadyApplied(failed[0]) from err
            raise

    def seen_balance(self, customer_id: str) -> Item | None:
        """The balance item as readers see it (lots not folded yet counted), None without points."""
        book = self.snapshot(customer_id, datetime.now(UTC))
        return book.balance.to_item() if book.exists or book.lots else None

    # -- items of a transaction ------------------------------------------------------------------
    @staticmethod
    def dedupe_item(customer_id: str, key: str, outcome: str, now: datetime, retention_days: int) -> Item:
        return {
            "pk": customer_pk(customer_id),
            "sk": dedupe_sk(key),
            "entity": DEDUPE_ENTITY,
            "customer_id": customer_id,
            "outcome": outcome,
            "at": now.isoformat(),
            "expires_at": int((now + timedelta(days=retention_days)).timestamp()),
        }

    def record_outcome(self, customer_id: str, key: str, outcome: str, now: datetime, retention: int) -> bool:
        """A dedupe record alone (events that change nothing); False when it existed."""
        return self.table.put_new(self.dedupe_item(customer_id, key, outcome, now, retention))

    @staticmethod
    def waiting_item(
        customer_id: str,
        order_id: str,
        refunds: list[RefundRequest],
        now: datetime,
        retention_days: int = 400,
    ) -> Item:
        """Refunds of an order not credited yet (one item per order, applied when it arrives).

        Expires (TTL) after the event retention: an order cancelled before it was ever paid
        never arrives, and its cancellation should not wait forever.
        """
        return {
            "pk": customer_pk(customer_id),
            "sk": waiting_sk(order_id),
            "entity": WAITING_ENTITY,
            "customer_id": customer_id,
            "order_id": order_id,
            "refunds": {r.refund_key: r.to_dict() for r in refunds},
            "updated_at": now.isoformat(),
            "expires_at": int((now + timedelta(days=retention_days)).timestamp()),
        }

    @staticmethod
    def _refunds_of(item: Item) -> list[RefundRequest]:
        return [RefundRequest.from_dict(r) for _, r in sorted(item.get("refunds", {}).items())]

    def waiting_refunds(self, customer_id: str) -> dict[str, list[RefundRequest]]:
        """Every waiting refund of a customer, by order (merges move them)."""
        items = self.table.query_all(customer_pk(customer_id), sk_prefix="PTS#WAIT#", consistent=True)
        return {i["order_id"]: self._refunds_of(i) for i in items}

    # -- redemptions ------------------------------------------------------------------------------
    def redemption(self, customer_id: str, redemption_id: str) -> Item | None:
        return self.table.get(customer_pk(customer_id), redemption_sk(redemption_id))

    @staticmethod
    def redemption_item(customer_id: str, redemption_id: str, **attrs: Any) -> Item:
        return {
            "pk": customer_pk(customer_id),
            "sk": redemption_sk(redemption_id),
            "entity": REDEMPTION_ENTITY,
            "customer_id": customer_id,
            "redemption_id": redemption_id,
            **attrs,
        }

    # -- reads for the API ------------------------------------------------------------------------
    def lots(self, customer_id: str) -> list[Lot]:
        return self._lots(customer_id)

    def entries(self, customer_id: str, limit: int, cursor: str | None) -> tuple[list[Entry], str | None]:
        """Newest first: the entry items merged with the entries lots stand for (``own_entries``).

        A folded lot's entries sit at the version that folded it; lots not folded yet come first,
        newest earning first (their place is fixed once folded: a page may then show one again).
        """
        pk, start = customer_pk(customer_id), decode_cursor(cursor)
        items, last = self.table.query(pk, sk_prefix="PTS#E#", forward=False, limit=limit, start_key=start)
        ranked = [(i["sk"], Entry.from_item(i)) for i in items]
        lots = sorted(self._lots(customer_id), key=lambda lot: (lot.earned_at, lot.order_id))
        unfolded = 0
        for lot in lots:
            for entry in lot.own_ledger():
                if not lot.folded:
                    entry.index, unfolded = unfolded, unfolded + 1
                ranked.append((entry_sk(entry.version, entry.index), entry))
        ranked = sorted(
            (r for r in ranked if start is None or r[0] < start["sk"]), key=lambda r: r[0], reverse=True
        )
        page = ranked[:limit]
        more = len(ranked) > limit or last is not None
        return [e for _, e in page], encode_cursor({"pk": pk, "sk": page[-1][0]}) if more and page else None

    def exists(self, pk: str, sk: str) -> bool:
        return self.table.get(pk, sk) is not None

    # -- scheduled jobs ---------------------------------------------------------------------------
    def _index_page(self, gsi1pk: str, start: Item | None, limit: int) -> tuple[list[Item], Item | None]:
        return self.table.query(gsi1pk, index="gsi1", limit=limit, start_key=start)

    def due_lots(self, day: date, limit: int = 100) -> Iterator[list[Item]]:
        """Pages of lots whose return window ends on ``day`` (every shard)."""
        yield from self._pages("PTSDUE", day, limit)

    def expiring_lots(self, day: date, limit: int = 100) -> Iterator[list[Item]]:
        """Pages of available lots that expire on ``day`` (every shard)."""
        yield from self._pages("PTSEXP", day, limit)

    def tier_reviews(self, day: date, limit: int = 100) -> Iterator[list[Item]]:
        """Pages of balances due for a tier review on ``day`` (every shard)."""
        yield from self._pages("PTSTIER", day, limit)

    def _pages(self, prefix: str, day: date, limit: int) -> Iterator[list[Item]]:
        for shard in range(SHARDS):
            gsi1pk = day_shard_key(prefix, day, shard)
            start: Item | None = None
            while True:
                items, start = self._index_page(gsi1pk, start, limit)
                if items:
                    yield items
                if start is None:
                    break

    def job_state(self, job: str) -> Item:
        return self.table.get("PTSJOB", job) or {}

    def save_job_state(self, job: str, **state: Any) -> None:
        self.table.put({"pk": "PTSJOB", "sk": job, "entity": JOB_ENTITY, **state})

    def put_new(self, item: Item) -> bool:
        return self.table.put_new(item)

    # -- rules ----------------------------------------------------------------------------------
    def rules(self) -> tuple[list[AccrualRule], bool]:
        """Every stored rule, and whether the default set was seeded (the ``SEEDED`` marker)."""
        items = list(self.table.query_all(RULES_PK, consistent=True))
        rules = [AccrualRule.from_item(i) for i in items if i["sk"].startswith("RULE#")]
        return rules, any(i["sk"] == SEEDED_SK for i in items)

    def mark_seeded(self, now: datetime) -> None:
        self.table.put({"pk": RULES_PK, "sk": SEEDED_SK, "entity": RULE_ENTITY, "at": now.isoformat()})

    def create_rule(self, rule: AccrualRule, now: datetime) -> None:
        item = {**rule.to_item(), "created_at": now.isoformat()}
        if not self.table.put_new(item):
            raise Conflict(f"rule {rule.rule_id} exists", code="rule_exists", field="rule_id")

    def deactivate_rule(self, rule_id: str, now: datetime) -> AccrualRule:
        try:
            item = self.table.update(
                RULES_PK,
                f"RULE#{rule_id}",
                "SET active = :f, updated_at = :now",
                condition="attribute_exists(pk)",
                values={":f": False, ":now": now.isoformat()},
            )
        except Conflict as err:
            raise NotFound(f"rule {rule_id} not found", code="rule_not_found") from err
        return AccrualRule.from_item(item)
