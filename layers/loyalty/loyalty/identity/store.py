"""Identity items in the single table (see docs/data-model.md, "Identity"): keys and access.

- ``IDENT#<type>#<value>`` / ``IDENT``: identifier -> ``customer_id`` (put only if absent: one
  identifier belongs to exactly one customer).
- ``CUST#<id>`` / ``PROFILE``: the golden profile (``status`` active|merging|merged|erasing|erased,
  ``version`` for optimistic writes, ``lock`` while a merge/unmerge holds it).
- ``CUST#<id>`` / ``ID#<type>#<value>``: the customer's identifiers (contact points).
- ``CUST#<id>`` / ``TL#<iso>#<event_id>``: the cross-channel timeline, one entry per event; the
  entry that attributes its event carries ``stage = attributed`` (its INSERT is routed).
- ``CUST#<id>`` / ``REDIRECT``: an absorbed customer -> its survivor.
- ``MERGE#<merge_id>`` / ``JOURNAL`` | ``MERGE`` | ``UNJOURNAL`` | ``UNMERGE``: a merge's progress,
  its append-only log item (``entity=merge``, routed to points), and the same for its unmerge.
- ``MERGEREVIEW#<id>`` / ``MERGEREVIEW``: a quarantined merge; GSI1 ``MERGEREVIEW#<status>``.
- ``ERASURE#<customer_id>`` / ``ERASURE``: the audit record of an erasure (no personal data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from loyalty import customers
from loyalty.customers import ATTRIBUTED, TIMELINE_ENTITY, customer_pk, profile_key, redirect_key
from loyalty.errors import Conflict
from loyalty.identity.profile import iso
from loyalty.models.identifiers import Identifier, IdentifierType
from loyalty.models.merges import MERGE_ENTITY, CustomerMerged
from loyalty.points.store import PointsStore
from loyalty.store.table import Item, Table, tx_check, tx_delete, tx_put, tx_put_new, tx_update

PROFILE_ENTITY = "profile"
IDENTIFIER_ENTITY = "identifier"
IDENTITY_ENTITY = "identity"
REDIRECT_ENTITY = "redirect"
JOURNAL_ENTITY = "merge_journal"
REVIEW_ENTITY = "merge_review"
ERASURE_ENTITY = "erasure"

ACTIVE = "active"
_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")


def ident_key(ident: Identifier) -> tuple[str, str]:
    return f"IDENT#{ident.key}", "IDENT"


def contact_key(customer_id: str, ident: Identifier) -> tuple[str, str]:
    return customer_pk(customer_id), f"ID#{ident.key}"


def timeline_key(customer_id: str, at: str, event_id: str) -> tuple[str, str]:
    return customer_pk(customer_id), f"TL#{at}#{event_id}"


def merge_key(merge_id: str, part: str = "MERGE") -> tuple[str, str]:
    """``part``: JOURNAL (progress), MERGE (the log item), UNJOURNAL, UNMERGE."""
    return f"MERGE#{merge_id}", part


def _close_journal(merge_id: str, part: str, at: str) -> dict[str, Any]:
    """The transaction action that marks a started (un)merge journal ``done`` (JOURNAL | UNJOURNAL)."""
    return tx_update(
        *merge_key(merge_id, part),
        "SET #st = :done, finished_at = :at",
        "#st = :started",
        names={"#st": "status"},
        values={":done": "done", ":started": "started", ":at": at},
    )


def _open_journal(merge_id: str, part: str, survivor_id: str, lock: str, at: str, **extra: Any) -> list[Any]:
    """The transaction actions that start an (un)merge: its journal ``part`` (JOURNAL | UNJOURNAL)
    created, and the survivor locked with ``lock`` while it is active and unlocked."""
    journal = {
        "pk": merge_key(merge_id, part)[0],
        "sk": part,
        "entity": JOURNAL_ENTITY,
        "merge_id": merge_id,
        "survivor_id": survivor_id,
        "status": "started",
        "started_at": at,
        **extra,
    }
    return [
        tx_put_new(journal),
        tx_update(
            *profile_key(survivor_id),
            "SET #lock = :lock",
            "#st = :active AND attribute_not_exists(#lock)",
            names={"#lock": "lock", "#st": "status"},
            values={":lock": lock, ":active": ACTIVE},
        ),
    ]


def review_key(review_id: str) -> tuple[str, str]:
    return f"MERGEREVIEW#{review_id}", "MERGEREVIEW"


def erasure_key(customer_id: str) -> tuple[str, str]:
    return f"ERASURE#{customer_id}", "ERASURE"


def strip_keys(item: Item) -> Item:
    """An item without its table keys (profiles snapshotted into merge-log items)."""
    return {k: v for k, v in item.items() if k not in _KEYS}


def profile_item(profile: Item) -> Item:
    pk, sk = profile_key(profile["customer_id"])
    return {**strip_keys(profile), "pk": pk, "sk": sk, "entity": PROFILE_ENTITY}


def ident_item(ident: Identifier, customer_id: str, channel: str, at: str) -> Item:
    pk, sk = ident_key(ident)
    return {
        "pk": pk,
        "sk": sk,
        "entity": IDENTIFIER_ENTITY,
        "type": ident.type.value,
        "value": ident.value,
        "customer_id": customer_id,
        "channel": channel,
        "attached_at": at,
    }


def contact_item(ident: Identifier, customer_id: str, channel: str, at: str) -> Item:
    pk, sk = contact_key(customer_id, ident)
    return {
        "pk": pk,
        "sk": sk,
        "entity": IDENTITY_ENTITY,
        "type": ident.type.value,
        "value": ident.value,
        "customer_id": customer_id,
        "channel": channel,
        "attached_at": at,
    }


def identifier_of(item: Item) -> Identifier:
    """The identifier an IDENT / ID item is about (values are stored normalised already)."""
    return Identifier.model_construct(type=IdentifierType(item["type"]), value=item["value"])


def active_check(customer_id: str) -> dict[str, Any]:
    """Transaction guard: the customer exists and is active (not being merged away or erased)."""
    return tx_check(
        *profile_key(customer_id), "#st = :active", names={"#st": "status"}, values={":active": ACTIVE}
    )


class IdentityStore:
    """Reads and the simple writes of the identity graph; merges live in ``loyalty.identity.merge``."""

    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()

    # -- reads ---------------------------------------------------------------------------------
    def owners(self, identifiers: Sequence[Identifier], *, consistent: bool = True) -> dict[Identifier, str]:
        """Identifier -> the customer id its IDENT item names (absent when unknown).

        ``consistent=False`` only where every write that follows is conditional on what was read
        (resolution's first attempt: docs/architecture.md, "Reads a conditional write guards").
        """
        if not identifiers:
            return {}
        items = self.table.batch_get([ident_key(i) for i in identifiers], consistent=consistent)
        by_pk = {item["pk"]: item["customer_id"] for item in items}
        return {i: by_pk[ident_key(i)[0]] for i in identifiers if ident_key(i)[0] in by_pk}

    def profile(self, customer_id: str) -> Item | None:
        return self.table.get(*profile_key(customer_id))

    def profiles(self, customer_ids: Iterable[str]) -> dict[str, Item]:
        items = self.table.batch_get([profile_key(c) for c in customer_ids])
        return {item["customer_id"]: item for item in items}

    def resolve(self, customer_id: str) -> str:
        """The live id of ``customer_id``: REDIRECT items of absorbed customers are followed."""
        return customers.resolve(self.table, customer_id)

    def contacts(self, customer_id: str) -> list[Item]:
        """The customer's ID# items (its identifiers with the channel they came from)."""
        return list(self.table.query_all(customer_pk(customer_id), sk_prefix="ID#", consistent=True))

    def identifiers_of(self, customer_id: str) -> list[Identifier]:
        return [identifier_of(item) for item in self.contacts(customer_id)]

    def timeline(self, customer_ids: Sequence[str], limit: int, before: str | None = None) -> list[Item]:
        """The latest timeline entries over a customer and the ids it absorbed (read through)."""
        entries: dict[str, Item] = {}
        for cid in customer_ids:
            hi = f"TL#{before}" if before else "TL#\uffff"
            items, _ = self.table.query(
                customer_pk(cid), sk_between=("TL#", hi), forward=False, limit=limit, consistent=True
            )
            for item in items:
                if before and item["sk"] >= f"TL#{before}":
                    continue
                # other capabilities put their entries on the timeline too (e.g. notifications)
                entries.setdefault(str(item.get("event_id") or item["sk"]), item)
        return sorted(entries.values(), key=lambda i: i["sk"], reverse=True)[:limit]

    # -- writes --------------------------------------------------------------------------------
    def create(self, profile: Item, identifiers: Sequence[Identifier], channel: str, at: str) -> None:
        """A new customer with its first identifiers, atomically (any identifier taken: Conflict)."""
        actions = [tx_put_new(profile_item(profile))]
        for ident in identifiers:
            actions.append(tx_put_new(ident_item(ident, profile["customer_id"], channel, at)))
            actions.append(tx_put(contact_item(ident, profile["customer_id"], channel, at)))
        self.table.transact(actions)

    def attach(self, customer_id: str, identifiers: Sequence[Identifier], channel: str, at: str) -> None:
        """Attach unknown identifiers to an active customer (chunks of 30; a taken one: Conflict)."""
        for start in range(0, len(identifiers), 30):
            actions = [active_check(customer_id)]
            for ident in identifiers[start : start + 30]:
                actions.append(tx_put_new(ident_item(ident, customer_id, channel, at)))
                actions.append(tx_put(contact_item(ident, customer_id, channel, at)))
            self.table.transact(actions)

    def save_profile(self, profile: Item) -> Item:
        """Write a profile read at ``version`` if nobody wrote it since and it is still active."""
        version = int(profile.get("version", 0))
        item = profile_item({**profile, "version": version + 1})
        self.table.put(
            item,
            condition="#v = :v AND #st = :active",
            names={"#v": "version", "#st": "status"},
            values={":v": version, ":active": ACTIVE},
        )
        return item

    def add_timeline(self, customer_id: str, entry: Item, *, attributes: bool = False) -> bool:
        """One timeline entry per event (a redelivery finds it there). ``attributes``: the entry is
        the event's attribution (``stage = attributed``: the router routes its INSERT)."""
        pk, sk = timeline_key(customer_id, entry["occurred_at"], entry["event_id"])
        stage = {"stage": ATTRIBUTED} if attributes else {}
        return self.table.put_new(
            {**entry, **stage, "pk": pk, "sk": sk, "entity": TIMELINE_ENTITY, "customer_id": customer_id}
        )

    def entries_of(self, customer_ids: Sequence[str], entry: Item) -> list[Item]:
        """The timeline entries of the event of ``entry`` under any of ``customer_ids``."""
        if not customer_ids:
            return []
        at, event_id = entry["occurred_at"], entry["event_id"]
        return self.table.batch_get([timeline_key(c, at, event_id) for c in customer_ids])

    # -- merges and unmerges: the transactions of loyalty.identity.merge -----------------------
    def lock_merge(
        self, merge_id: str, survivor_id: str, absorbed_ids: Sequence[str], at: str, reason: Item
    ) -> None:
        """Open the journal, lock the survivor and mark the absorbed ``merging``, atomically
        (any participant not active or already locked: Conflict)."""
        actions = _open_journal(
            merge_id,
            "JOURNAL",
            survivor_id,
            merge_id,
            at,
            absorbed_ids=list(absorbed_ids),
            moved=[],
            reason=reason,
        )
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

    def move_contacts(
        self, merge_id: str, survivor_id: str, absorbed_id: str, contacts: Sequence[Item]
    ) -> None:
        """Move the absorbed customer's ``contacts`` (ID# items) to the survivor: IDENT re-pointed,
        ID item moved, the journal's ``moved`` appended, atomically (moved by another: Conflict)."""
        actions = []
        moved = []
        for item in contacts:
            ident = identifier_of(item)
            actions.append(
                tx_update(
                    *ident_key(ident),
                    "SET customer_id = :s",
                    "customer_id IN (:a, :s)",
                    values={":s": survivor_id, ":a": absorbed_id},
                )
            )
            actions.append(tx_put(contact_item(ident, survivor_id, item["channel"], item["attached_at"])))
            actions.append(tx_delete(*contact_key(absorbed_id, ident), "attribute_exists(pk)"))
            moved.append({"customer_id": absorbed_id, "type": item["type"], "value": item["value"]})
        actions.append(
            tx_update(
                *merge_key(merge_id, "JOURNAL"),
                "SET moved = list_append(moved, :chunk)",
                "#st = :started",
                names={"#st": "status"},
                values={":chunk": moved, ":started": "started"},
            )
        )
        self.table.transact(actions)

    def finalize_merge(
        self,
        journal: Item,
        survivor: Item,
        combined: Item,
        snapshots: dict[str, Item],
        message: CustomerMerged,
    ) -> None:
        """The survivor's combined profile (unlocked), REDIRECTs, absorbed profiles ``merged``, the
        merge-log item and the journal closed, atomically (the survivor changed: Conflict)."""
        merge_id = journal["merge_id"]
        survivor_id = survivor["customer_id"]
        absorbed_ids: list[str] = journal["absorbed_ids"]
        at = iso(message.at)
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
                        "entity": REDIRECT_ENTITY,
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
                    "at": at,
                    "data": message.model_dump_json(),
                    "moved": journal.get("moved", []),
                    "before": before,
                    "absorbed_profiles": snapshots,
                    "merged_consents": combined.get("consents", {}),
                    "reason": journal.get("reason", {}),
                }
            )
        )
        actions.append(_close_journal(merge_id, "JOURNAL", at))
        self.table.transact(actions)

    def lock_unmerge(self, merge_id: str, survivor_id: str, lock: str, at: str) -> None:
        """Open the unmerge journal and lock the survivor with ``lock``, atomically."""
        self.table.transact(_open_journal(merge_id, "UNJOURNAL", survivor_id, lock, at))

    def move_back(self, survivor_id: str, moves: Sequence[tuple[Identifier, str, str, str]]) -> None:
        """Give identifiers back: (identifier, its original customer, channel, attached_at) each;
        IDENT re-pointed only while the survivor holds it (else Conflict), ID item moved back."""
        actions = []
        for ident, origin, channel, at in moves:
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
        if actions:
            self.table.transact(actions)

    def finalize_unmerge(
        self,
        log: Item,
        survivor: Item,
        restored: Item,
        profiles: Sequence[Item],
        review: Item,
        message: CustomerMerged,
    ) -> None:
        """The survivor's restored profile (unlocked), the absorbed profiles back (REDIRECTs gone),
        the rejected review that keeps them apart, the unmerge-log item and the unmerge journal
        closed, atomically."""
        merge_id = log["merge_id"]
        at = iso(message.at)
        actions = [
            tx_put(
                profile_item(restored),
                "#lock = :u AND #v = :v",
                names={"#lock": "lock", "#v": "version"},
                values={":u": survivor["lock"], ":v": int(survivor.get("version", 0))},
            )
        ]
        for prof in profiles:
            actions.append(tx_delete(*redirect_key(prof["customer_id"])))
            actions.append(
                tx_put(
                    profile_item(prof), "#st = :merged", names={"#st": "status"}, values={":merged": "merged"}
                )
            )
        actions.append(tx_put(review))
        actions.append(
            tx_put_new(
                {
                    "pk": merge_key(merge_id)[0],
                    "sk": "UNMERGE",
                    "entity": MERGE_ENTITY,
                    "kind": "unmerge",
                    "merge_id": merge_id,
                    "survivor_id": survivor["customer_id"],
                    "absorbed_ids": log["absorbed_ids"],
                    "at": at,
                    "data": message.model_dump_json(),
                }
            )
        )
        actions.append(_close_journal(merge_id, "UNJOURNAL", at))
        self.table.transact(actions)

    # -- 360 and erasure -----------------------------------------------------------------------
    def points_balance(self, customer_id: str) -> Item | None:
        """Points' balance as its readers see it, when points has one for this customer (read only)."""
        return PointsStore(self.table).seen_balance(customer_id)

    def collection(self, customer_id: str) -> list[Item]:
        """Every item of a customer's collection (any capability's), for erasure."""
        return list(self.table.query_all(customer_pk(customer_id), consistent=True))

    def start_erasure(self, customer_id: str, at: str) -> None:
        """Mark an active, unlocked customer as being erased (idempotent while erasing)."""
        self.table.update(
            *profile_key(customer_id),
            "SET #st = :erasing, erasure_started_at = if_not_exists(erasure_started_at, :at)",
            condition="(#st = :active AND attribute_not_exists(#lock)) OR #st = :erasing",
            names={"#st": "status", "#lock": "lock"},
            values={":erasing": "erasing", ":active": ACTIVE, ":at": at},
            return_values="NONE",
        )

    def free_identifier(self, owner_ids: Sequence[str], item: Item) -> None:
        """Delete an identifier's IDENT and ID items (the value can link a new customer again)."""
        ident = identifier_of(item)
        names = {f":c{i}": c for i, c in enumerate(owner_ids)}
        self.table.transact(
            [
                tx_delete(
                    *ident_key(ident),
                    f"attribute_not_exists(pk) OR customer_id IN ({', '.join(names)})",
                    values=names,
                ),
                tx_delete(item["pk"], item["sk"]),
            ]
        )

    def count_erasure(self, customer_id: str, counter: str) -> None:
        """Count one erasure step on the profile (counts survive a crash and its retry)."""
        self.table.update(
            *profile_key(customer_id),
            f"ADD erasure_{counter} :one",
            values={":one": 1},
            return_values="NONE",
        )

    def delete(self, pk: str, sk: str) -> None:
        self.table.delete(pk, sk)

    def anonymise_event(self, event_id: str, data: str) -> bool:
        """Replace an event's canonical JSON by its anonymised form (False: expired or done already)."""
        try:
            self.table.update(
                f"EVENT#{event_id}",
                "EVENT",
                "SET #d = :d, anonymised = :t",
                condition="attribute_exists(pk) AND attribute_not_exists(anonymised)",
                names={"#d": "data"},
                values={":d": data, ":t": True},
                return_values="NONE",
            )
        except Conflict:
            return False
        return True

    def event_data(self, event_id: str) -> str | None:
        item = self.table.get(f"EVENT#{event_id}", "EVENT")
        return None if item is None else str(item["data"])

    def redact_merge(self, merge_id: str) -> None:
        """Drop the personal data (profile snapshots, identifier values) of a merge's items."""
        for part in ("MERGE", "JOURNAL", "UNJOURNAL"):
            try:
                self.table.update(
                    *merge_key(merge_id, part),
                    "REMOVE #b, absorbed_profiles, moved, merged_consents SET redacted = :t",
                    condition="attribute_exists(pk)",
                    names={"#b": "before"},
                    values={":t": True},
                    return_values="NONE",
                )
            except Conflict:
                continue

    def tombstone(self, customer_id: str, at: str) -> None:
        """The profile of an erased customer: no personal data, ``status = erased``."""
        pk, sk = profile_key(customer_id)
        self.table.put(
            {
                "pk": pk,
                "sk": sk,
                "entity": PROFILE_ENTITY,
                "customer_id": customer_id,
                "status": "erased",
                "erased_at": at,
            }
        )

    def put_erasure_audit(self, audit: Item) -> None:
        pk, sk = erasure_key(audit["customer_id"])
        self.table.put({**audit, "pk": pk, "sk": sk, "entity": ERASURE_ENTITY})

    def erasure_audit(self, customer_id: str) -> Item | None:
        return self.table.get(*erasure_key(customer_id))
