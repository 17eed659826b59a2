"""Customer API use cases: the 360 view, lookup, staff edits, merge reviews, unmerge, erasure."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from loyalty.customers import PROFILE_SK, customer_id_of
from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.identity import profile as rules
from loyalty.identity.merge import MergeEngine, survivor_of
from loyalty.identity.reviews import STATUSES, ReviewStore
from loyalty.identity.store import ACTIVE, IdentityStore
from loyalty.identity.views import (
    ConsentView,
    CustomerPatch,
    CustomerView,
    ErasureResult,
    IdentifierView,
    MergeReviewView,
    PointsView,
    ProfileView,
    ReviewPage,
    TimelineEntry,
    TimelinePage,
    UnmergeResult,
)
from loyalty.models.events import ChannelEvent, MessagePayload, ProfilePayload
from loyalty.models.identifiers import Identifier, IdentifierType, InvalidIdentifier
from loyalty.observability import logger
from loyalty.retry import Again, retry
from loyalty.store.table import Item

#: lookup query parameter -> identifier type
LOOKUP_PARAMS = {
    "email": IdentifierType.EMAIL,
    "phone": IdentifierType.PHONE,
    "card": IdentifierType.LOYALTY_CARD,
    "device": IdentifierType.DEVICE_ID,
    "handle": IdentifierType.SOCIAL_HANDLE,
    "pos": IdentifierType.POS_CUSTOMER,
}
LAST_INTERACTIONS = 10


def _entry(item: Item) -> TimelineEntry:
    entity = str(item.get("entity", "timeline"))
    summary = item.get("summary") or {
        k: item[k] for k in ("intent", "status", "reason", "message_id") if item.get(k) is not None
    }
    return TimelineEntry(
        entity=entity,
        event_id=item.get("event_id"),
        occurred_at=str(item.get("occurred_at") or item.get("at") or item["sk"].split("#")[1]),
        channel=item.get("channel"),
        type=str(item.get("type") or item.get("intent") or entity),
        customer_id=str(item.get("customer_id") or customer_id_of(item["pk"])),
        summary={k: str(v) for k, v in summary.items()},
    )


class CustomerService:
    def __init__(self, store: IdentityStore | None = None, engine: MergeEngine | None = None) -> None:
        self.store = store or IdentityStore()
        self.engine = engine or MergeEngine(self.store)
        self.reviews = ReviewStore(self.store.table)

    # -- reads ---------------------------------------------------------------------------------
    def _live(self, customer_id: str) -> Item:
        live_id = self.store.resolve(customer_id)
        prof = self.store.profile(live_id)
        if prof is None:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
        if prof.get("status") in {"erased", "erasing"}:
            raise NotFound(f"customer {customer_id} was erased", code="customer_erased")
        return prof

    def view(self, customer_id: str) -> CustomerView:
        """The 360 view of a customer (an absorbed id answers with its survivor)."""
        prof = self._live(customer_id)
        cid = prof["customer_id"]
        balance = self.store.points_balance(cid)
        ids = [cid, *(prof.get("absorbed_ids") or [])]
        return CustomerView(
            customer_id=cid,
            requested_id=customer_id,
            status=prof["status"],
            created_at=prof["created_at"],
            profile=ProfileView(
                **{k: prof.get(k) for k in rules.FIELDS}, field_sources=prof.get("field_sources") or {}
            ),
            identifiers=[
                IdentifierView(
                    type=i["type"], value=i["value"], channel=i["channel"], attached_at=i["attached_at"]
                )
                for i in self.store.contacts(cid)
            ],
            consents={k: ConsentView(**v) for k, v in (prof.get("consents") or {}).items()},
            points=None
            if balance is None
            else PointsView(
                **{k: balance.get(k) for k in PointsView.model_fields if balance.get(k) is not None}
            ),
            absorbed_ids=prof.get("absorbed_ids") or [],
            merges=prof.get("merges") or [],
            last_interactions=[_entry(i) for i in self.store.timeline(ids, LAST_INTERACTIONS)],
        )

    def lookup(self, params: dict[str, str | None]) -> CustomerView:
        """Find a customer by exactly one identifier (normalised as at ingest)."""
        given = {k: v for k, v in params.items() if v}
        if len(given) != 1:
            raise InvalidInput(
                f"give exactly one of: {', '.join(LOOKUP_PARAMS)}", code="one_identifier_required"
            )
        ((param, value),) = given.items()
        try:
            ident = Identifier(type=LOOKUP_PARAMS[param], value=value)
        except (InvalidIdentifier, ValueError) as err:
            raise InvalidInput(
                f"not a valid {param}: {value!r}", code="invalid_identifier", field=param
            ) from err
        owner = self.store.owners([ident]).get(ident)
        if owner is None:
            raise NotFound(f"no customer with that {param}", code="customer_not_found")
        return self.view(owner)

    def timeline(self, customer_id: str, limit: int, before: str | None) -> TimelinePage:
        prof = self._live(customer_id)
        ids = [prof["customer_id"], *(prof.get("absorbed_ids") or [])]
        items = self.store.timeline(ids, limit, before)
        last = items[-1]["sk"].removeprefix("TL#") if len(items) == limit else None
        return TimelinePage(
            customer_id=prof["customer_id"], entries=[_entry(i) for i in items], next_before=last
        )

    # -- staff edits ---------------------------------------------------------------------------
    def patch(self, customer_id: str, change: CustomerPatch) -> CustomerView:
        """Apply staff edits as verified facts stamped now (they win over older channel data)."""
        at = datetime.now(UTC)
        source = {"source": "staff", "at": rules.iso(at), "verified": True}
        facts = {
            name: (value, dict(source))
            for name, value in change.model_dump(exclude={"consents"}, exclude_none=True).items()
        }
        consents: dict[str, dict[str, Any]] = {
            str(ch): {"granted": granted, "source": "staff", "at": rules.iso(at)}
            for ch, granted in change.consents.items()
        }
        if not facts and not consents:
            raise InvalidInput("nothing to change", code="empty_patch")

        def attempt(_: int) -> Item:
            prof = self._live(customer_id)
            if prof.get("lock"):
                self.engine.resume(prof["lock"])
                raise Again("a merge held the profile: helped it finish")
            rules.apply_facts(prof, facts)
            rules.apply_consents(prof, consents)
            return self.store.save_profile(prof)

        busy = Conflict("the profile kept changing; retry", code="profile_busy")
        prof = retry(attempt, attempts=8, on=(Again, Conflict), what="profile edit", exhausted=busy)
        logger.info(
            "profile edited by staff", extra={"customer_id": prof["customer_id"], "fields": sorted(facts)}
        )
        return self.view(prof["customer_id"])

    # -- merge reviews -------------------------------------------------------------------------
    def list_reviews(self, status: str, limit: int, cursor: str | None) -> ReviewPage:
        if status not in STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(STATUSES)}", code="invalid_status", field="status"
            )
        start = None
        if cursor:
            try:
                start = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            except (ValueError, json.JSONDecodeError) as err:
                raise InvalidInput("bad cursor", code="invalid_cursor", field="cursor") from err
        items, last = self.reviews.list(status, limit, start)
        nxt = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return ReviewPage(reviews=[MergeReviewView.model_validate(i) for i in items], next_cursor=nxt)

    def decide(self, review_id: str, decision: str, by: str) -> MergeReviewView:
        """Approve (merge the customers now, limits waived) or reject (keep them apart for good)."""
        review = self.reviews.get(review_id)
        if review is None:
            raise NotFound(f"merge review {review_id} not found", code="review_not_found")
        if review["status"] != "pending":
            raise Conflict(f"merge review {review_id} is already {review['status']}", code="review_decided")
        if decision == "reject":
            return MergeReviewView.model_validate(self.reviews.decide(review_id, "rejected", by))
        live_ids = sorted({self.store.resolve(c) for c in review["customer_ids"]})
        profiles = self.store.profiles(live_ids)
        active = [p for p in profiles.values() if p.get("status") == ACTIVE]
        for prof in active:
            if prof.get("lock"):
                self.engine.resume(prof["lock"])
        merge_id = None
        if len(active) >= 2:
            survivor = survivor_of(active)
            absorbed = sorted(p["customer_id"] for p in active if p["customer_id"] != survivor)
            merge_id = self.engine.merge(
                survivor, absorbed, reason={"review_id": review_id, "approved_by": by}
            )
        logger.info("merge review approved", extra={"review_id": review_id, "merge_id": merge_id})
        return MergeReviewView.model_validate(self.reviews.decide(review_id, "approved", by, merge_id))

    def unmerge(self, customer_id: str, merge_id: str | None) -> UnmergeResult:
        prof = self._live(customer_id)
        if prof["customer_id"] != customer_id:
            raise Conflict(
                f"{customer_id} was merged into {prof['customer_id']}; unmerge that one",
                code="not_a_survivor",
            )
        done = self.engine.unmerge(customer_id, merge_id)
        log = self.store.table.get(f"MERGE#{done}", "MERGE")
        restored = list(log["absorbed_ids"]) if log else []
        logger.info("customers unmerged", extra={"merge_id": done, "survivor_id": customer_id})
        return UnmergeResult(merge_id=done, survivor_id=customer_id, restored_ids=restored)

    # -- erasure -------------------------------------------------------------------------------
    def erase(self, customer_id: str) -> ErasureResult:
        """Right to erasure: every item of the person removed or anonymised, identifiers freed.

        Resumable: the profile is marked ``erasing`` first, so a retry after a crash continues.
        What stays is an audit record with ids, counts and times only.
        """
        live_id = self.store.resolve(customer_id)
        audit = self.store.erasure_audit(live_id)
        prof = self.store.profile(live_id)
        if prof is None:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
        if prof.get("status") == "erased" and audit is not None:
            return ErasureResult.model_validate(audit)
        if prof.get("lock"):
            self.engine.resume(prof["lock"])
            prof = self.store.profile(live_id) or prof
        now = rules.iso(datetime.now(UTC))
        self.store.start_erasure(live_id, now)
        ids = [live_id, *(prof.get("absorbed_ids") or [])]
        merges: set[str] = set(prof.get("merges") or [])
        for cid in ids:
            for item in self.store.collection(cid):
                sk = item["sk"]
                if sk == PROFILE_SK:
                    merges |= set(item.get("merges") or [])
                    continue
                if sk.startswith("ID#"):
                    self.store.free_identifier([cid, live_id], item)
                    self.store.count_erasure(live_id, "identifiers_freed")
                    continue
                if sk.startswith("TL#") and item.get("event_id") and self._anonymise_event(item["event_id"]):
                    self.store.count_erasure(live_id, "events_anonymised")
                self.store.delete(item["pk"], sk)
                self.store.count_erasure(live_id, "items_removed")
        for merge_id in sorted(merges):
            self.store.redact_merge(merge_id)
        for cid in ids[1:]:
            self.store.tombstone(cid, now)
        progress = self.store.profile(live_id) or {}
        counts = {
            k: int(progress.get(f"erasure_{k}", 0))
            for k in ("items_removed", "identifiers_freed", "events_anonymised")
        }
        result = ErasureResult(customer_id=live_id, erased_ids=ids, erased_at=now, **counts)
        self.store.put_erasure_audit(result.model_dump())
        self.store.tombstone(live_id, now)  # last: until here a retry finds it ``erasing`` and goes on
        logger.info("customer erased", extra={"customer_id": live_id, **counts})
        return result

    def _anonymise_event(self, event_id: str) -> bool:
        data = self.store.event_data(event_id)
        if data is None:
            return False
        event = ChannelEvent.model_validate_json(data)
        payload: Any = event.payload
        if isinstance(payload, ProfilePayload):
            payload = ProfilePayload(consents=payload.consents, verified=payload.verified)
        elif isinstance(payload, MessagePayload):
            payload = payload.model_copy(update={"text": ""})
        anonymous = event.model_copy(update={"identifiers": [], "payload": payload})
        return self.store.anonymise_event(event_id, anonymous.model_dump_json())
