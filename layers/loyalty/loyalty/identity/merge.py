"""Merge and unmerge customers in idempotent, resumable steps (see docs/architecture.md).

A merge:
1. lock (one transaction): the journal ``MERGE#<id>/JOURNAL`` is created, the survivor gets
   ``lock = <id>`` and every absorbed customer ``status = merging`` (nobody can attach to, merge
   or update them any more); any participant already locked cancels it (the caller re-resolves).
2. move identifiers, 32 per transaction: IDENT re-pointed, ID item moved, and the journal's
   ``moved`` list appended in the same transaction (it is what an unmerge replays). Each step
   re-queries what is left on the absorbed customer, so a repeated step does nothing twice.
3. finalize (one transaction): the survivor's profile combined (loyalty.identity.profile), its
   lock released; REDIRECT items; absorbed profiles ``status = merged``; the append-only merge-log
   item ``MERGE#<id>/MERGE`` (``entity = merge``, ``data`` = CustomerMerged: the router sends it
   to points, which moves the ledger); the journal marked done.
A crash between steps leaves a lock that names the journal: whoever meets it (the retried
message, another worker's resolution, a staff call) runs ``resume(<id>)`` to completion.

The timeline is not copied: the survivor's ``absorbed_ids`` lists every id it took in, and the
timeline is read through them. An unmerge replays the log item the same way, in reverse.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from loyalty.customers import customer_pk
from loyalty.errors import Conflict, NotFound, TransientError
from loyalty.identity import profile as rules
from loyalty.identity.reviews import unmerged_review_item
from loyalty.identity.store import ACTIVE, IdentityStore, contact_key, identifier_of, merge_key, strip_keys
from loyalty.models.merges import CustomerMerged
from loyalty.retry import Again, retry
from loyalty.store.table import Item

CHUNK = 32  # identifiers per transaction: 3 actions each + the journal = 97 <= 100
UNMERGE_LOCK = "unmerge:"

Checkpoint = Callable[[str], None]


def _noop(step: str) -> None:
    return None


def survivor_of(profiles: Sequence[Item]) -> str:
    """The survivor rule: the oldest ``created_at``; a tie goes to the smallest customer id."""
    oldest = min(profiles, key=lambda p: (str(p["created_at"]), str(p["customer_id"])))
    return str(oldest["customer_id"])


class MergeEngine:
    """Runs merges and unmerges; ``checkpoint(step)`` is called between steps (tests inject crashes)."""

    def __init__(self, store: IdentityStore | None = None, checkpoint: Checkpoint = _noop) -> None:
        self.store = store or IdentityStore()
        self.table = self.store.table
        self.checkpoint = checkpoint

    # -- merge ---------------------------------------------------------------------------------
    def merge(self, survivor_id: str, absorbed_ids: Sequence[str], *, reason: dict[str, Any]) -> str:
        """Lock the participants, then run the merge to its end; returns the merge id."""
        merge_id = f"m_{uuid.uuid4().hex}"
        self.store.lock_merge(merge_id, survivor_id, absorbed_ids, rules.iso(datetime.now(UTC)), reason)
        self.checkpoint("locked")
        self.resume(merge_id)
        return merge_id

    def resume(self, lock: str) -> None:
        """Complete the merge (or unmerge) a lock names; a finished one is left as it is."""
        if lock.startswith(UNMERGE_LOCK):
            self._resume_unmerge(lock.removeprefix(UNMERGE_LOCK))
            return
        journal = self.table.get(*merge_key(lock, "JOURNAL"))
        if journal is None:
            raise NotFound(f"merge {lock} has no journal", code="merge_not_found")
        if journal["status"] == "done":
            return
        for absorbed in journal["absorbed_ids"]:
            self._move_identifiers(lock, journal["survivor_id"], absorbed)
        self._finalize(lock)

    def _move_identifiers(self, merge_id: str, survivor: str, absorbed: str) -> None:
        while True:
            items, _ = self.table.query(customer_pk(absorbed), sk_prefix="ID#", limit=CHUNK, consistent=True)
            if not items:
                return
            try:
                self.store.move_contacts(merge_id, survivor, absorbed, items)
            except Conflict:
                continue  # another worker moved this chunk first: look again
            self.checkpoint("moved")

    def _finalize(self, merge_id: str) -> None:

        def attempt(_: int) -> None:
            journal = self.table.get(*merge_key(merge_id, "JOURNAL"))
            if journal is None or journal["status"] == "done":
                return
            survivor_id = journal["survivor_id"]
            absorbed_ids = journal["absorbed_ids"]
            survivor = self.store.profile(survivor_id)
            parts = self.store.profiles(absorbed_ids)
            if survivor is None or survivor.get("lock") != merge_id or len(parts) != len(absorbed_ids):
                raise Again("a helper finished it between our reads: the journal says done next time")
            # Conflict: the survivor's profile changed meanwhile (or a helper finished): re-read
            self._finalize_with(journal, survivor, parts)
            self.checkpoint("finalized")

        retry(attempt, attempts=8, on=(Again, Conflict), what=f"merge {merge_id} finalization")

    def _finalize_with(self, journal: Item, survivor: Item, parts: dict[str, Item]) -> None:
        merge_id = journal["merge_id"]
        absorbed_ids: list[str] = journal["absorbed_ids"]
        snapshots = {a: {**strip_keys(parts[a]), "status": ACTIVE} for a in absorbed_ids}
        for snap in snapshots.values():
            snap.pop("lock", None)
            snap.pop("merge_id", None)
        combined = rules.combine(survivor, snapshots.values())
        taken_in = list(survivor.get("absorbed_ids") or [])
        for a in absorbed_ids:
            taken_in += [a, *(snapshots[a].get("absorbed_ids") or [])]
        combined.update(
            absorbed_ids=list(dict.fromkeys(taken_in)),
            merges=[*(survivor.get("merges") or []), merge_id],
            version=int(survivor.get("version", 0)) + 1,
        )
        combined.pop("lock", None)
        message = CustomerMerged(
            kind="merge",
            merge_id=merge_id,
            survivor_id=survivor["customer_id"],
            absorbed_ids=absorbed_ids,
            at=datetime.now(UTC),
        )
        self.store.finalize_merge(journal, survivor, combined, snapshots, message)

    # -- unmerge -------------------------------------------------------------------------------
    def unmerge(self, survivor_id: str, merge_id: str | None = None) -> str:
        """Split the survivor's latest merge (or ``merge_id``, which must be its latest) back out."""
        survivor = self.store.profile(survivor_id)
        if survivor is None or survivor.get("status") != ACTIVE:
            raise NotFound(f"customer {survivor_id} not found", code="customer_not_found")
        merges: list[str] = survivor.get("merges") or []
        lock = survivor.get("lock")
        if isinstance(lock, str) and lock.startswith(UNMERGE_LOCK):
            self._resume_unmerge(lock.removeprefix(UNMERGE_LOCK))  # a crashed unmerge: finish it
            return lock.removeprefix(UNMERGE_LOCK)
        if not merges:
            raise Conflict(f"customer {survivor_id} has no merge to undo", code="nothing_to_unmerge")
        target = merge_id or merges[-1]
        if target not in merges:
            raise NotFound(f"merge {target} is not one of {survivor_id}'s", code="merge_not_found")
        if target != merges[-1]:
            raise Conflict("undo the later merges first", code="not_latest_merge")
        if lock:
            self.resume(lock)
            raise TransientError(f"customer {survivor_id} was being merged; retry")
        log = self.table.get(*merge_key(target, "MERGE"))
        if log is None:
            raise NotFound(f"merge {target} has no log", code="merge_not_found")
        self.store.lock_unmerge(target, survivor_id, UNMERGE_LOCK + target, rules.iso(datetime.now(UTC)))
        self.checkpoint("unmerge-locked")
        self._resume_unmerge(target)
        return target

    def _resume_unmerge(self, merge_id: str) -> None:
        journal = self.table.get(*merge_key(merge_id, "UNJOURNAL"))
        log = self.table.get(*merge_key(merge_id, "MERGE"))
        if journal is None or log is None:
            raise NotFound(f"unmerge of {merge_id} not found", code="merge_not_found")
        if journal["status"] == "done":
            return
        survivor_id = log["survivor_id"]
        moved: list[Item] = log.get("moved", [])
        for start in range(0, len(moved), CHUNK):
            self._move_back(survivor_id, moved[start : start + CHUNK])

        def attempt(_: int) -> None:
            survivor = self.store.profile(survivor_id)
            if survivor is None or survivor.get("lock") != UNMERGE_LOCK + merge_id:
                return  # finished by a helper
            self._unmerge_with(log, survivor)
            self.checkpoint("unmerged")

        retry(attempt, attempts=8, on=Conflict, what=f"unmerge of {merge_id}")

    def _move_back(self, survivor_id: str, moved: Sequence[Item]) -> None:
        retry(lambda _: self._move_back_once(survivor_id, moved), attempts=8, on=Conflict, what="unmerge")

    def _move_back_once(self, survivor_id: str, moved: Sequence[Item]) -> None:
        idents = [identifier_of(m) for m in moved]
        owners = self.store.owners(idents)
        moves = []
        for entry, ident in zip(moved, idents, strict=True):
            if owners.get(ident) != survivor_id:
                continue  # already moved back, or erased / re-attached since
            contact = self.table.get(*contact_key(survivor_id, ident))
            channel = contact["channel"] if contact else "merge"
            at = contact["attached_at"] if contact else rules.iso(datetime.now(UTC))
            moves.append((ident, str(entry["customer_id"]), str(channel), str(at)))
        if not moves:
            return
        self.store.move_back(survivor_id, moves)
        self.checkpoint("moved-back")

    def _unmerge_with(self, log: Item, survivor: Item) -> None:
        merge_id = log["merge_id"]
        absorbed_ids: list[str] = log["absorbed_ids"]
        snapshots: dict[str, Item] = log.get("absorbed_profiles", {})
        restored = rules.split(
            survivor, log.get("before", {}), snapshots.values(), log.get("merged_consents", {})
        )
        removed = set()
        for a in absorbed_ids:
            removed |= {a, *(snapshots.get(a, {}).get("absorbed_ids") or [])}
        restored.update(
            absorbed_ids=[c for c in survivor.get("absorbed_ids") or [] if c not in removed],
            merges=[m for m in survivor.get("merges") or [] if m != merge_id],
            version=int(survivor.get("version", 0)) + 1,
        )
        restored.pop("lock", None)
        now = datetime.now(UTC)
        profiles = []
        for a in absorbed_ids:
            snap = dict(snapshots.get(a) or {"customer_id": a, "created_at": rules.iso(now)})
            snap.update(status=ACTIVE, customer_id=a, version=int(snap.get("version", 0)) + 1)
            snap.pop("merged_into", None)
            # its events may have been attributed to the survivor meanwhile (see resolve._attribute)
            snap["split_from"] = list(
                dict.fromkeys([*(snap.get("split_from") or []), survivor["customer_id"]])
            )
            profiles.append(snap)
        survivor_id = survivor["customer_id"]
        review = unmerged_review_item([survivor_id, *absorbed_ids], survivor_id, merge_id, rules.iso(now))
        message = CustomerMerged(
            kind="unmerge", merge_id=merge_id, survivor_id=survivor_id, absorbed_ids=absorbed_ids, at=now
        )
        self.store.finalize_unmerge(log, survivor, restored, profiles, review, message)
