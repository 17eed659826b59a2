"""Identity resolution on moto: new / known / attach / merge / quarantine / blocklist / crash / unmerge."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import Resolver as StackResolver
from loyalty.identity import resolve_customer_id
from loyalty.identity.merge import MergeEngine
from loyalty.identity.policy import LinkPolicy
from loyalty.identity.resolve import Resolver
from loyalty.identity.reviews import ReviewStore
from loyalty.identity.store import IdentityStore, merge_key
from loyalty.models.merges import CustomerMerged
from loyalty.routing.router import plan
from loyalty.settings import get_settings
from loyalty.store.table import Table
from tests.support.identity import attributed_to, attributions, event


class Crash(Exception):
    """An injected failure between two steps of a merge."""


def crash_at(step: str, times: int = 1) -> Any:
    state = {"left": times}

    def checkpoint(name: str) -> None:
        if name == step and state["left"] > 0:
            state["left"] -= 1
            raise Crash(step)

    return checkpoint


def partition(table: Table) -> dict[str, set[str]]:
    """Customer id -> identifier keys, from every IDENT item (what the graph says)."""
    from loyalty import aws

    out: dict[str, set[str]] = {}
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=table.name)
    for page in pages:
        for item in page["Items"]:
            if item["sk"]["S"] == "IDENT":
                out.setdefault(item["customer_id"]["S"], set()).add(item["pk"]["S"].removeprefix("IDENT#"))
    return out


@pytest.fixture
def store(stack: StackResolver) -> IdentityStore:
    return IdentityStore()


def test_unknown_identifiers_create_one_customer_and_the_event_is_attributed(store: IdentityStore) -> None:
    # Given a first web sign-up
    ev = event(("email", "Ana.Garcia@gmail.com"), ("phone", "612 345 678"), profile={"first_name": "Ana"})
    # When it is resolved
    result = Resolver().resolve(ev)
    # Then one customer holds both identifiers, with a profile, a timeline entry and the event attributed
    assert result.created
    assert result.customer_id
    assert partition(store.table) == {result.customer_id: {"email#anagarcia@gmail.com", "phone#+34612345678"}}
    prof = store.profile(result.customer_id)
    assert prof is not None
    assert (prof["status"], prof["first_name"], prof["entity"]) == ("active", "Ana", "profile")
    assert [c["channel"] for c in store.contacts(result.customer_id)] == ["web", "web"]
    assert len(store.timeline([result.customer_id], 10)) == 1
    assert attributed_to(ev.event_id) == result.customer_id


def test_a_redelivered_event_changes_nothing(store: IdentityStore) -> None:
    ev = event(("email", "ana@x.com"), profile={"first_name": "Ana"})
    first = Resolver().resolve(ev)
    again = Resolver().resolve(ev)
    assert again.customer_id == first.customer_id
    assert not again.created
    assert not again.attributed
    assert len(partition(store.table)) == 1
    assert len(store.timeline([first.customer_id or ""], 10)) == 1


def test_known_identifier_finds_the_customer_and_new_ones_are_attached(store: IdentityStore) -> None:
    first = Resolver().resolve(event(("loyalty_card", "7700 1234"), channel="pos"))
    second = Resolver().resolve(event(("loyalty_card", "77001234"), ("email", "ana@x.com"), channel="web"))
    assert second.customer_id == first.customer_id
    assert second.attached == ["email#ana@x.com"]
    channels = {c["type"]: c["channel"] for c in store.contacts(first.customer_id or "")}
    assert channels == {"loyalty_card": "pos", "email": "web"}


def _two_customers() -> tuple[str, str]:
    a = Resolver().resolve(
        event(
            ("loyalty_card", "1111"), channel="pos", profile={"first_name": "Ana"}, consents=[("email", True)]
        )
    )
    b = Resolver().resolve(
        event(
            ("email", "ana@x.com"),
            ("device_id", "dev-1"),
            minutes=5,
            profile={"first_name": "Ana María", "locale": "es"},
            consents=[("email", False), ("push", True)],
        )
    )
    assert a.customer_id
    assert b.customer_id
    return a.customer_id, b.customer_id


def test_an_event_linking_two_customers_merges_them_into_the_oldest(store: IdentityStore) -> None:
    # Given a store customer (card) and, later, a web customer (email)
    older, newer = _two_customers()
    # When a chat event carries both the card and the email
    result = Resolver().resolve(
        event(("loyalty_card", "1111"), ("email", "ana@x.com"), channel="chat", minutes=10)
    )
    # Then they are one customer: the oldest survives and holds every identifier
    assert result.customer_id == older
    assert result.merged == [newer]
    assert partition(store.table) == {older: {"loyalty_card#1111", "email#ana@x.com", "device_id#dev-1"}}
    # the absorbed id keeps resolving, its profile says where it went
    assert resolve_customer_id(store.table, newer) == older
    absorbed = store.profile(newer)
    assert absorbed is not None
    assert (absorbed["status"], absorbed["merged_into"]) == ("merged", older)
    # the profile took the most recent values, the opt-out won, the grant elsewhere stayed
    prof = store.profile(older)
    assert prof is not None
    assert (prof["first_name"], prof["locale"]) == ("Ana María", "es")
    assert prof["consents"]["email"]["granted"] is False
    assert prof["consents"]["push"]["granted"] is True
    assert prof["absorbed_ids"] == [newer]
    # the timeline reads through the absorbed id: all three events
    assert len(store.timeline([older, *prof["absorbed_ids"]], 10)) == 3


def test_the_merge_log_item_is_the_points_contract(store: IdentityStore) -> None:
    older, newer = _two_customers()
    Resolver().resolve(event(("loyalty_card", "1111"), ("email", "ana@x.com"), minutes=10))
    prof = store.profile(older)
    assert prof is not None
    (merge_id,) = prof["merges"]
    log = store.table.get(*merge_key(merge_id))
    assert log is not None
    assert log["entity"] == "merge"
    message = CustomerMerged.model_validate_json(log["data"])
    assert (message.kind, message.survivor_id, message.absorbed_ids) == ("merge", older, [newer])
    assert {(m["customer_id"], m["type"]) for m in log["moved"]} == {(newer, "email"), (newer, "device_id")}
    # and the router sends its INSERT to the points queue
    ((url, routed),) = plan(log, None, get_settings())
    assert url == get_settings().points_queue_url
    assert routed == message


def test_blocklisted_identifiers_never_link_customers(store: IdentityStore) -> None:
    a = Resolver().resolve(event(("email", "noemail@shop.es"), ("loyalty_card", "1")))
    b = Resolver().resolve(event(("email", "NOEMAIL@shop.es"), ("loyalty_card", "2")))
    assert a.customer_id != b.customer_id
    assert "email#noemail@shop.es" not in {k for keys in partition(store.table).values() for k in keys}
    only_junk = event(("email", "noemail@shop.es"))
    assert Resolver().resolve(only_junk).customer_id is None
    assert attributions(only_junk.event_id) == []


def test_the_stores_own_phone_from_configuration_links_nobody(store: IdentityStore) -> None:
    policy = LinkPolicy.from_settings("phone=+34910000000", "", 3)
    a = Resolver(policy=policy).resolve(event(("email", "a@x.com"), ("phone", "910000000"), channel="pos"))
    b = Resolver(policy=policy).resolve(
        event(("email", "b@x.com"), ("phone", "+34 910 000 000"), channel="pos")
    )
    assert a.customer_id != b.customer_id


def test_a_merge_that_would_give_a_customer_two_cards_is_quarantined(store: IdentityStore) -> None:
    # Given two customers, each with its loyalty card
    a = Resolver().resolve(event(("loyalty_card", "1"), ("email", "a@x.com")))
    b = Resolver().resolve(event(("loyalty_card", "2"), ("email", "b@x.com"), minutes=1))
    # When an event links them (a shared tablet typed both emails)
    ev = event(("email", "a@x.com"), ("email", "b@x.com"), minutes=2, profile={"first_name": "Tablet"})
    result = Resolver().resolve(ev)
    # Then nothing merges; a pending review exists; the event is attributed to the would-be survivor
    assert result.quarantined
    assert result.customer_id == a.customer_id
    assert len(partition(store.table)) == 2
    assert "first_name" not in (store.profile(a.customer_id or "") or {})
    reviews = ReviewStore(store.table)
    pending, _ = reviews.list("pending")
    assert [r["review_id"] for r in pending] == [result.quarantined]
    assert pending[0]["problems"] == ["loyalty_card"]
    assert sorted(pending[0]["customer_ids"]) == sorted([str(a.customer_id), str(b.customer_id)])
    # and the same link again lands on the same review
    assert (
        Resolver().resolve(event(("email", "b@x.com"), ("email", "a@x.com"), minutes=3)).quarantined
        == result.quarantined
    )
    assert len(reviews.list("pending")[0]) == 1


def test_joining_more_customers_than_allowed_is_quarantined(store: IdentityStore) -> None:
    ids = [Resolver().resolve(event(("email", f"p{i}@x.com"), minutes=i)).customer_id for i in range(3)]
    policy = LinkPolicy.from_settings("", "", 2)
    result = Resolver(policy=policy).resolve(event(*[("email", f"p{i}@x.com") for i in range(3)], minutes=9))
    assert result.quarantined
    assert len(partition(store.table)) == 3
    review = ReviewStore(store.table).get(result.quarantined)
    assert review is not None
    assert review["problems"] == ["too_many_customers"]
    assert sorted(review["customer_ids"]) == sorted(str(i) for i in ids)


def test_a_crash_between_merge_steps_is_completed_by_the_retry(store: IdentityStore) -> None:
    # Given two customers, the newer holding 70 devices (a merge of more than 100 items)
    policy = LinkPolicy.from_settings("", "device_id=200", 3)
    older = Resolver(policy=policy).resolve(event(("email", "a@x.com"))).customer_id
    newer = (
        Resolver(policy=policy)
        .resolve(event(*[("device_id", f"d{i}") for i in range(20)], minutes=1))
        .customer_id
    )
    for batch in range(1, 4):
        Resolver(policy=policy).resolve(
            event(("device_id", "d0"), *[("device_id", f"d{batch}-{i}") for i in range(17)])
        )
    assert newer
    assert older
    assert len(store.contacts(newer)) == 71
    link = event(("email", "a@x.com"), ("device_id", "d0"), minutes=5)
    # When the worker crashes after moving the first chunk of identifiers
    crashing = Resolver(policy=policy, engine=MergeEngine(checkpoint=crash_at("moved")))
    with pytest.raises(Crash):
        crashing.resolve(link)
    # Then the state is half-way and locked: nothing half-visible leaks (no redirect yet)
    assert resolve_customer_id(store.table, newer) == newer
    half = partition(store.table)
    assert len(half[older]) == 1 + 32
    assert attributions(link.event_id) == []
    # When the message is redelivered
    result = Resolver(policy=policy).resolve(link)
    # Then the merge completes exactly once
    assert result.customer_id == older
    assert partition(store.table) == {
        older: {"email#a@x.com", *(k for k in half[newer]), *(k for k in half[older] if k != "email#a@x.com")}
    }
    assert len(store.contacts(older)) == 72
    assert store.contacts(newer) == []
    prof = store.profile(older)
    assert prof is not None
    assert len(prof["merges"]) == 1
    log = store.table.get(*merge_key(prof["merges"][0]))
    assert log is not None
    assert len(log["moved"]) == 71


def test_another_workers_event_helps_a_crashed_merge_finish(store: IdentityStore) -> None:
    older, newer = _two_customers()
    with pytest.raises(Crash):
        Resolver(engine=MergeEngine(checkpoint=crash_at("locked"))).resolve(
            event(("loyalty_card", "1111"), ("email", "ana@x.com"))
        )
    # an unrelated event of the absorbed customer finds it locked, finishes the merge, lands on the survivor
    result = Resolver().resolve(event(("device_id", "dev-1"), minutes=20))
    assert result.customer_id == older
    assert resolve_customer_id(store.table, newer) == older


def test_unmerge_splits_identifiers_profile_and_consents_back(store: IdentityStore) -> None:
    older, newer = _two_customers()
    before_older = store.profile(older)
    Resolver().resolve(event(("loyalty_card", "1111"), ("email", "ana@x.com"), minutes=10))
    prof = store.profile(older)
    assert prof is not None
    (merge_id,) = prof["merges"]
    # When staff undo the merge, crashing once half-way, then retrying
    with pytest.raises(Crash):
        MergeEngine(checkpoint=crash_at("moved-back")).unmerge(older)
    assert MergeEngine().unmerge(older) == merge_id
    # Then identifiers, attributes and consents are back where they came from
    assert partition(store.table) == {
        older: {"loyalty_card#1111"},
        newer: {"email#ana@x.com", "device_id#dev-1"},
    }
    restored = store.profile(older)
    absorbed = store.profile(newer)
    assert restored is not None
    assert absorbed is not None
    assert before_older is not None
    assert restored["first_name"] == before_older["first_name"] == "Ana"
    assert restored["consents"] == before_older["consents"]
    assert "locale" not in restored
    assert (absorbed["status"], absorbed["first_name"]) == ("active", "Ana María")
    assert restored["merges"] == []
    assert resolve_customer_id(store.table, newer) == newer
    # and an unmerge log item tells points to move the ledger back
    log = store.table.get(merge_key(merge_id)[0], "UNMERGE")
    assert log is not None
    message = CustomerMerged.model_validate_json(log["data"])
    assert (log["entity"], message.kind, message.absorbed_ids) == ("merge", "unmerge", [newer])
    # and the same link seen again does not merge them back: the split is a standing rejection
    again = Resolver().resolve(event(("loyalty_card", "1111"), ("email", "ana@x.com"), minutes=30))
    assert again.quarantined
    assert again.merged == []
    assert resolve_customer_id(store.table, newer) == newer


def test_unmerge_of_a_customer_never_merged_is_refused(store: IdentityStore) -> None:
    from loyalty.errors import Conflict, NotFound

    cid = Resolver().resolve(event(("email", "a@x.com"))).customer_id
    assert cid
    with pytest.raises(Conflict):
        MergeEngine().unmerge(cid)
    with pytest.raises(NotFound):
        MergeEngine().unmerge("c_missing")


def test_nested_merges_resolve_through_chains_and_unmerge_the_outer_one_only(store: IdentityStore) -> None:
    # Given A, B and C created in that order; each merge keeps the oldest of its pair
    a = Resolver().resolve(event(("email", "a@x.com"))).customer_id
    b = Resolver().resolve(event(("email", "b@x.com"), minutes=1)).customer_id
    c = Resolver().resolve(event(("email", "c@x.com"), minutes=2)).customer_id
    assert a
    assert b
    assert c
    Resolver().resolve(event(("email", "b@x.com"), ("email", "c@x.com"), minutes=3))  # C into B
    Resolver().resolve(event(("email", "a@x.com"), ("email", "c@x.com"), minutes=4))  # B (with C) into A
    # Then every old id resolves to A, and A's timeline reads through both absorbed ids
    assert {resolve_customer_id(store.table, x) for x in (a, b, c)} == {a}
    prof = store.profile(a)
    assert prof is not None
    assert sorted(prof["absorbed_ids"]) == sorted([b, c])
    assert len(store.timeline([a, *prof["absorbed_ids"]], 50)) == 5
    # When the outer merge is undone, B comes back WITH C (that earlier merge stands)
    MergeEngine().unmerge(a)
    assert partition(store.table) == {a: {"email#a@x.com"}, b: {"email#b@x.com", "email#c@x.com"}}
    assert resolve_customer_id(store.table, c) == b
    restored = store.profile(b)
    assert restored is not None
    assert restored["absorbed_ids"] == [c]
    assert (store.profile(a) or {})["absorbed_ids"] == []
