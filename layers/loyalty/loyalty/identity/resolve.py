"""Resolve one canonical event to its customer (the identity queue's use case).

known identifier -> that customer; unknown identifiers of a known customer -> attached; nothing
known -> a new customer; identifiers of two or more customers -> a merge (or a quarantined
review when it would break a limit). Then the event's profile facts are applied and its timeline
entry written: that entry's INSERT attributes the event (``stage = attributed``; the router turns
it into the points and analytics messages), and the event item is not rewritten. Events that carry
profile facts are attributed as before by ``EventLog.attribute`` (the event's MODIFY is routed).

Exactly once: a redelivery that resolves to the same customer finds its entry (put if absent). One
that resolves elsewhere can only do so after a merge, an unmerge or an erasure, so a customer with
a merge history (``merges``, ``absorbed_ids``, ``split_from``) first looks for the event on the
timelines of the customers it absorbed or was split from, then claims the event item
(``EventLog.claim``, the per-event guard); and the router does not route the entry of an event an
erasure anonymised (a stale delivery of an erased person's event, which creates a customer as it
always did). See docs/architecture.md, "Event log: attribution without rewriting the event".

Every write is conditional; a lost race (an identifier taken meanwhile, a profile changed, a
participant locked by a merge) restarts the resolution from a fresh read, so concurrent workers
and redeliveries converge on the same graph.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loyalty.customers import ATTRIBUTED
from loyalty.errors import Conflict, TransientError
from loyalty.eventlog.store import EventLog
from loyalty.identity import profile as rules
from loyalty.identity.merge import MergeEngine, survivor_of
from loyalty.identity.policy import LinkPolicy, get_policy
from loyalty.identity.reviews import ReviewStore, review_id_for
from loyalty.identity.store import ACTIVE, IdentityStore
from loyalty.models.events import ChannelEvent, ProfilePayload
from loyalty.models.identifiers import Identifier
from loyalty.observability import logger
from loyalty.retry import Again, retry
from loyalty.store.table import Item

_CUSTOMER_NS = uuid.UUID("3b0f7a52-8a43-4bd4-a2a5-0f9f0d8e2c61")
MAX_ATTEMPTS = 12


@dataclass
class Resolution:
    """What resolving one event did (the handler turns it into metrics)."""

    customer_id: str | None = None
    created: bool = False
    attached: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    quarantined: str | None = None
    attributed: bool = False

    def counts(self) -> dict[str, int]:
        """The business metrics of this resolution (metric name -> count)."""
        return {
            "ProfilesCreated": int(self.created),
            "IdentifiersAttached": len(self.attached),
            "IdentifiersRefused": len(self.refused),
            "CustomersMerged": len(self.merged),
            "MergesQuarantined": int(self.quarantined is not None),
        }

    def log_keys(self) -> dict[str, Any]:
        """What the log says of it (not the identifiers: they are personal data)."""
        shown = ("customer_id", "merged", "quarantined", "attributed")
        return {"new_customer": self.created, **{name: getattr(self, name) for name in shown}}


def new_customer_id(event_id: str, attempt: int = 0) -> str:
    """Deterministic per event, so a redelivered event never creates a second customer."""
    return f"c_{uuid.uuid5(_CUSTOMER_NS, f'{event_id}:{attempt}').hex}"


def _timeline_entry(event: ChannelEvent) -> Item:
    payload = event.payload
    summary: dict[str, Any] = {}
    names = (
        "order_id",
        "refund_id",
        "total",
        "amount",
        "currency",
        "sku",
        "store_id",
        "campaign_id",
        "fulfilment",
    )
    for name in names:
        value = getattr(payload, name, None)
        if value is not None:
            summary[name] = str(value)
    return {
        "event_id": event.event_id,
        "occurred_at": rules.iso(event.occurred_at),
        "channel": event.channel.value,
        "type": event.type.value,
        "kind": payload.kind,
        "summary": summary,
    }


class Resolver:
    """The resolution use case, with its collaborators injectable for tests."""

    def __init__(
        self,
        store: IdentityStore | None = None,
        policy: LinkPolicy | None = None,
        engine: MergeEngine | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.store = store or IdentityStore()
        self.policy = policy or get_policy()
        self.engine = engine or MergeEngine(self.store)
        self.events = events or EventLog(self.store.table)
        self.reviews = ReviewStore(self.store.table)

    def resolve(self, event: ChannelEvent) -> Resolution:
        """Resolve, apply facts, write the timeline entry and attribute ``event``."""
        result = Resolution()
        identifiers = self.policy.usable(event.identifiers)
        if len(identifiers) < len(set(event.identifiers)):
            logger.info("blocklisted identifiers ignored", extra={"event_id": event.event_id})
        if not identifiers:
            return result
        customer = self._link(event, identifiers, result)
        if result.quarantined is None:  # a quarantined event's facts may be someone else's
            customer = self._apply_profile(event, customer)
        result.customer_id = customer["customer_id"]
        if isinstance(event.payload, ProfilePayload):
            # profile facts: the event's MODIFY attributes it (the notification fan-out reads it)
            self.store.add_timeline(result.customer_id, _timeline_entry(event))
            result.attributed = self.events.attribute(event.event_id, result.customer_id)
        else:
            result.attributed = self._attribute(event, customer)
        return result

    def _attribute(self, event: ChannelEvent, customer: Item) -> bool:
        """Attribute ``event`` by its timeline entry's INSERT, once (see the module's docstring)."""
        cid = customer["customer_id"]
        entry = _timeline_entry(event)
        related = [*(customer.get("absorbed_ids") or []), *(customer.get("split_from") or [])]
        if related or customer.get("merges"):
            if self.store.entries_of(related, entry):
                return False  # attributed before to a customer this one absorbed or was split from
            if not self.events.claim(event.event_id, cid):
                return False  # attributed to another customer before a merge or an unmerge
        return self.store.add_timeline(cid, entry, attributes=True)

    def attribution(self, event: ChannelEvent) -> Item | None:
        """The timeline entry that attributed ``event`` (read only; None: not attributed by one).
        Ops replays route it again, as the stream did (``loyalty.ops.recover``)."""
        owners = set(self.store.owners(self.policy.usable(event.identifiers)).values())
        family: set[str] = set()
        for cid in {self.store.resolve(owner) for owner in owners}:
            profile = self.store.profile(cid) or {}
            family |= {cid, *(profile.get("absorbed_ids") or []), *(profile.get("split_from") or [])}
        found = self.store.entries_of(sorted(family), _timeline_entry(event))
        return next((e for e in found if e.get("stage") == ATTRIBUTED), None)

    # -- linking -------------------------------------------------------------------------------
    def _link(self, event: ChannelEvent, identifiers: list[Identifier], result: Resolution) -> Item:
        # the graph changed under us (Again), or a write lost its race: read it again
        return retry(
            lambda attempt: self._link_once(event, identifiers, result, attempt),
            attempts=MAX_ATTEMPTS,
            on=(Again, Conflict, TransientError),
            what=f"identity graph of event {event.event_id}",
        )

    def _live_customers(
        self, identifiers: list[Identifier], *, consistent: bool
    ) -> tuple[dict[str, Item], list[Identifier]]:
        """Active customers owning any of the identifiers, and the identifiers nobody owns.

        The owners are read eventually consistent on a resolution's first attempt (half the
        units): a stale miss ends in a refused put-if-absent of the identifier (``create`` or
        ``attach``: Conflict, never a second owner), a stale owner in its profile's consistent read
        (merged: followed; erased: TransientError) or in a write a fresh read could also precede;
        every retry reads them consistently.
        """
        owners = self.store.owners(identifiers, consistent=consistent)
        profiles = self.store.profiles(set(owners.values()))
        ids = set()
        for owner in set(owners.values()):
            prof = profiles.get(owner)
            # an active profile never has a REDIRECT: follow redirects only for merged ones
            ids.add(
                owner if prof is not None and prof.get("status") != "merged" else self.store.resolve(owner)
            )
        missing = ids - set(profiles)
        if missing:
            profiles.update(self.store.profiles(missing))
        live: dict[str, Item] = {}
        for cid in ids:
            prof = profiles.get(cid)
            if prof is None:
                raise Again(f"profile {cid} not visible yet")
            status = prof.get("status")
            if prof.get("lock"):  # mid-merge (either side) or mid-unmerge: finish it first
                self.engine.resume(prof["lock"])
                raise Again("helped a merge finish")
            if status in {"erasing", "erased"}:
                raise TransientError(f"customer {cid} is being erased; its identifiers are not free yet")
            if status != ACTIVE:
                raise Again(f"customer {cid} is {status}")
            live[cid] = prof
        unknown = [i for i in identifiers if i not in owners]
        return live, unknown

    def _link_once(
        self, event: ChannelEvent, identifiers: list[Identifier], result: Resolution, attempt: int
    ) -> Item:
        live, unknown = self._live_customers(identifiers, consistent=attempt > 0)
        if not live:
            return self._create(event, identifiers, result, attempt)
        if len(live) == 1:
            (customer,) = live.values()
        else:
            joined = self._join(event, live, unknown, result)
            if joined is None:
                raise Again("merged: resolve again")
            customer = joined
        if unknown and result.quarantined is None:
            self._attach(event, customer, unknown, result)
        return customer

    def _create(
        self, event: ChannelEvent, identifiers: list[Identifier], result: Resolution, attempt: int
    ) -> Item:
        now = rules.iso(datetime.now(UTC))
        keep: list[Identifier] = []
        for ident in identifiers:
            if self.policy.room_for(keep, ident):
                keep.append(ident)
            else:
                result.refused.append(ident.key)
        profile: Item = {
            "customer_id": new_customer_id(event.event_id, attempt),
            "created_at": now,
            "status": ACTIVE,
            "version": 0,
            "consents": {},
            "field_sources": {},
            "first_channel": event.channel.value,
        }
        self.store.create(profile, keep, event.channel.value, now)
        result.created = True
        result.attached = [i.key for i in keep]
        logger.info(
            "customer created", extra={"customer_id": profile["customer_id"], "identifiers": len(keep)}
        )
        return {**profile, "version": 0}

    def _attach(
        self, event: ChannelEvent, customer: Item, unknown: list[Identifier], result: Resolution
    ) -> None:
        held = self.store.identifiers_of(customer["customer_id"])
        accepted: list[Identifier] = []
        for ident in unknown:
            if self.policy.room_for([*held, *accepted], ident):
                accepted.append(ident)
            elif ident.key not in result.refused:
                result.refused.append(ident.key)
        if not accepted:
            return
        now = rules.iso(datetime.now(UTC))
        self.store.attach(customer["customer_id"], accepted, event.channel.value, now)
        result.attached += [i.key for i in accepted]
        logger.info(
            "identifiers attached", extra={"customer_id": customer["customer_id"], "count": len(accepted)}
        )

    def _join(
        self, event: ChannelEvent, live: dict[str, Item], unknown: list[Identifier], result: Resolution
    ) -> Item | None:
        """Merge the customers (returns None: re-resolve), or quarantine and return the survivor."""
        survivor = survivor_of(list(live.values()))
        review_id = review_id_for(live)
        review = self.reviews.get(review_id)
        approved = review is not None and review.get("status") == "approved"
        if review is not None and not approved:
            result.quarantined = review_id  # pending or rejected: these customers stay apart
            return live[survivor]
        held = [i for cid in live for i in self.store.identifiers_of(cid)]
        problems = self.policy.violations([*held, *unknown])
        if len(live) > self.policy.max_merge_customers:
            problems.append("too_many_customers")
        if problems and not approved:
            self.reviews.open(review_id, sorted(live), survivor, problems, event)
            result.quarantined = review_id
            logger.warning("merge quarantined", extra={"review_id": review_id, "problems": problems})
            return live[survivor]
        absorbed = sorted(c for c in live if c != survivor)
        merge_id = self.engine.merge(
            survivor, absorbed, reason={"event_id": event.event_id, "channel": event.channel.value}
        )
        result.merged += absorbed
        logger.info(
            "customers merged", extra={"merge_id": merge_id, "survivor_id": survivor, "absorbed": absorbed}
        )
        return None

    # -- profile facts -------------------------------------------------------------------------
    def _apply_profile(self, event: ChannelEvent, customer: Item) -> Item:
        payload = event.payload
        if not isinstance(payload, ProfilePayload):
            return customer
        facts = rules.facts_of(payload, event.channel.value, event.occurred_at)
        consents = rules.consents_of(payload, event.channel.value, event.occurred_at)
        current: Item | None = customer
        for _ in range(MAX_ATTEMPTS):
            if current is None or current.get("status") != ACTIVE:
                cid = self.store.resolve(customer["customer_id"])
                current = self.store.profile(cid)
                if current is None or current.get("status") != ACTIVE:
                    if current is not None and current.get("lock"):
                        self.engine.resume(current["lock"])
                    current = None
                    continue
            updated = copy.deepcopy(current)
            changed = rules.apply_facts(updated, facts) + rules.apply_consents(updated, consents)
            if not changed:
                return current
            try:
                return self.store.save_profile(updated)
            except Conflict:
                current = None
        raise TransientError(f"profile of event {event.event_id} kept changing")
