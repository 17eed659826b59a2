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

from loyalty.customers import customer_pk, profile_key, redirect_key
from loyalty.errors import Conflict, NotFound, TransientError
from loyalty.identity import profile as rules
from loyalty.identity.reviews import unmerged_review_item
from loyalty.identity.store import (
    ACTIVE,
    JOURNAL_ENTITY,
    IdentityStore,
    close_journal,
    contact_item,
    contact_key,
    ident_key,
    identifier_of,
    merge_key,
    profile_item,
    strip_keys,
)
from loyalty.models.merges import MERGE_ENTITY, CustomerMerged
from loyalty.retry import Again, retry
from loyalty.store.table import Item, tx_delete, tx_put, tx_put_new, tx_update

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
        now = rules.iso(datetime.now(UTC))
        actions = [
            tx_put_new(
                {
                    "pk": merge_key(merge_id, "JOURNAL")[0],
                    "sk": "JOURNAL",
                    "entity": JOURNAL_ENTITY,
                    "merge_id": merge_id,
                    "survivor_id": survivor_id,
                    "absorbed_ids": list(absorbed_ids),
                    "status": "started",
                    "moved": [],
                    "started_at": now,
                    "reason": reason,
                }
            ),
            tx_update(
                *profile_key(survivor_id),
                "SET #lock = :m",
                "#st = :active AND attribute_not_exists(#lock)",
                names={"#lock": "lock", "#st": "status"},
                values={":m": merge_id, ":active": ACTIVE},
            ),
        ]
        for absorbed in absorbed_ids:
            actions.append(
                tx_update(
                    *profile_key(absorbed),
                    "SET #st = :merging, #lock = :m, merge_id = :m",
                    "#st = :active AND attribute_not_exists(#lock)",
                    names={"#lock": "lock", "#st": "status"},
                    values={":m": merge_id, ":active": ACTIVE, ":merging": "merging"},
                )
            )
        self.table.transact(actions)
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
            actions = []
            moved = []
            for item in items:
                ident = identifier_of(item)
                actions.append(
                    tx_update(
                        *ident_key(ident),
                        "SET customer_id = :s",
                        "customer_id IN (:a, :s)",
                        values={":s": survivor, ":a": absorbed},
                    )
                )
                actions.append(
                    tx_put({**contact_item(ident, survivor, item["channel"], item["attached_at"])})
                )
                actions.append(tx_delete(*contact_key(absorbed, ident), "attribute_exists(pk)"))
                moved.append({"customer_id": absorbed, "type": item["type"], "value": item["value"]})
            actions.append(
                tx_update(
                    *merge_key(merge_id, "JOURNAL"),
                    "SET moved = list_append(moved, :chunk)",
                    "#st = :started",
                    names={"#st": "status"},
                    values={":chunk": moved, ":started": "started"},
                )
            )
            try:
                self.table.transact(actions)
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
            self.table.transact(self._finalize_actions(journal, survivor, parts))
            self.checkpoint("finalized")

        retry(attempt, attempts=8, on=(Again, Conflict), what=f"merge {merge_id} finalization")

    def _finalize_actions(
        self, journal: Item, survivor: Item, parts: dict[str, Item]
    ) -> list[dict[str, Any]]:
        merge_id = journal["merge_id"]
        survivor_id = survivor["customer_id"]
        absorbed_ids: list[str] = journal["absorbed_ids"]
        now = datetime.now(UTC)
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
            kind="merge", merge_id=merge_id, survivor_id=survivor_id, absorbed_ids=absorbed_ids, at=now
        )
        before = strip_keys(survivor)
        before.pop("lock", None)
        actions = [
            tx_put(
                profile_item(combined),
                "#lock = :m AND #v = :v",
                names={"#lock": "lock", "#v": "version"},
                values={":m": merge_id, ":v": int(survivor.get("version", 0))},
            )
        ]
        for a in absorbed_ids:
            actions.append(
                tx_put(
                    {
                        "pk": redirect_key(a)[0],
                        "sk": redirect_key(a)[1],
                        "entity": "redirect",
                        "customer_id": a,
                        "survivor_id": survivor_id,
                        "merge_id": merge_id,
                    }
                )
            )
            actions.append(
                tx_update(
                    *profile_key(a),
                    "SET #st = :merged, merged_into = :s REMOVE #lock",
                    "#lock = :m",
                    names={"#st": "status", "#lock": "lock"},
                    values={":merged": "merged", ":s": survivor_id, ":m": merge_id},
                )
            )
        pk, sk = merge_key(merge_id, "MERGE")
        actions.append(
            tx_put_new(
                {
                    "pk": pk,
                    "sk": sk,
                    "entity": MERGE_ENTITY,
                    "kind": "merge",
                    "merge_id": merge_id,
                    "survivor_id": survivor_id,
                    "absorbed_ids": absorbed_ids,
                    "at": rules.iso(now),
                    "data": message.model_dump_json(),
                    "moved": journal.get("moved", []),
                    "before": before,
                    "absorbed_profiles": snapshots,
                    "merged_consents": combined.get("consents", {}),
                    "reason": journal.get("reason", {}),
                }
            )
        )
        actions.append(close_journal(merge_id, "JOURNAL", rules.iso(now)))
        return actions

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
        self.table.transact(
            [
                tx_put_new(
                    {
                        "pk": merge_key(target, "UNJOURNAL")[0],
                        "sk": "UNJOURNAL",
                        "entity": JOURNAL_ENTITY,
                        "merge_id": target,
                        "survivor_id": survivor_id,
                        "status": "started",
                        "started_at": rules.iso(datetime.now(UTC)),
                    }
                ),
                tx_update(
                    *profile_key(survivor_id),
                    "SET #lock = :u",
                    "#st = :active AND attribute_not_exists(#lock)",
                    names={"#lock": "lock", "#st": "status"},
                    values={":u": UNMERGE_LOCK + target, ":active": ACTIVE},
                ),
            ]
        )
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
            self.table.transact(self._unmerge_actions(log, survivor))
            self.checkpoint("unmerged")

        retry(attempt, attempts=8, on=Conflict, what=f"unmerge of {merge_id}")

    def _move_back(self, survivor_id: str, moved: Sequence[Item]) -> None:
        retry(lambda _: self._move_back_once(survivor_id, moved), attempts=8, on=Conflict, what="unmerge")

    def _move_back_once(self, survivor_id: str, moved: Sequence[Item]) -> None:
        idents = [identifier_of(m) for m in moved]
        owners = self.store.owners(idents)
        actions = []
        for entry, ident in zip(moved, idents, strict=True):
            if owners.get(ident) != survivor_id:
                continue  # already moved back, or erased / re-attached since
            contact = self.table.get(*contact_key(survivor_id, ident))
            channel = contact["channel"] if contact else "merge"
            at = contact["attached_at"] if contact else rules.iso(datetime.now(UTC))
            origin = entry["customer_id"]
            actions.append(
                tx_update(
                    *ident_key(ident),
                    "SET customer_id = :a",
                    "customer_id = :s",
                    values={":a": origin, ":s": survivor_id},
                )
            )
            actions.append(tx_put(contact_item(ident, origin, channel, at)))
            actions.append(tx_delete(*contact_key(survivor_id, ident)))
        if not actions:
            return
        self.table.transact(actions)
        self.checkpoint("moved-back")

    def _unmerge_actions(self, log: Item, survivor: Item) -> list[dict[str, Any]]:
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
        actions = [
            tx_put(
                profile_item(restored),
                "#lock = :u AND #v = :v",
                names={"#lock": "lock", "#v": "version"},
                values={":u": UNMERGE_LOCK + merge_id, ":v": int(survivor.get("version", 0))},
            )
        ]
        for a in absorbed_ids:
            snap = dict(snapshots.get(a) or {"customer_id": a, "created_at": rules.iso(now)})
            snap.update(status=ACTIVE, customer_id=a, version=int(snap.get("version", 0)) + 1)
            snap.pop("merged_into", None)
            actions.append(tx_delete(*redirect_key(a)))
            actions.append(
                tx_put(
                    profile_item(snap), "#st = :merged", names={"#st": "status"}, values={":merged": "merged"}
                )
            )
        survivor_id = survivor["customer_id"]
        actions.append(
            tx_put(unmerged_review_item([survivor_id, *absorbed_ids], survivor_id, merge_id, rules.iso(now)))
        )
        message = CustomerMerged(
            kind="unmerge",
            merge_id=merge_id,
            survivor_id=survivor["customer_id"],
            absorbed_ids=absorbed_ids,
            at=now,
        )
        pk, _ = merge_key(merge_id)
        actions.append(
            tx_put_new(
                {
                    "pk": pk,
                    "sk": "UNMERGE",
                    "entity": MERGE_ENTITY,
                    "kind": "unmerge",
                    "merge_id": merge_id,
                    "survivor_id": survivor["customer_id"],
                    "absorbed_ids": absorbed_ids,
                    "at": rules.iso(now),
                    "data": message.model_dump_json(),
                }
            )
        )
        actions.append(close_journal(merge_id, "UNJOURNAL", rules.iso(now)))
        return actions
