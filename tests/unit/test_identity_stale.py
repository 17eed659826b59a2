"""Identity's first read of the identifiers' owners is eventually consistent (issue 16, `rd`).

A replica that has not seen an IDENT item yet (or still names its owner before a merge) must
never end in a second customer or a lost link: the put-if-absent of the identifier refuses the
write, and the retry reads the owners consistently.
"""

from __future__ import annotations

import pytest

from devstack.template import Resolver as StackResolver
from loyalty.identity.resolve import Resolver
from loyalty.identity.store import IdentityStore, ident_key
from loyalty.store.table import Table
from tests.support.identity import attributed_to, event, ident
from tests.support.stale import stale_reads
from tests.unit.test_identity_resolution import partition


@pytest.fixture
def store(stack: StackResolver) -> IdentityStore:
    return IdentityStore()


def test_a_stale_miss_of_a_known_identifier_never_creates_a_second_customer(
    store: IdentityStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer holding a card, whose IDENT item a replica has not seen yet
    first = Resolver().resolve(event(("loyalty_card", "5550001"), channel="pos"))
    card = ident_key(ident("loyalty_card", "5550001"))
    with stale_reads(monkeypatch, {card: None}) as stale:
        # When another event of that card is resolved
        again = event(("loyalty_card", "5550001"), channel="pos", minutes=1)
        result = Resolver().resolve(again)
    # Then the create was refused by the card's put-if-absent, and the consistent retry found him
    assert result.customer_id == first.customer_id
    assert not result.created
    assert stale.consistent[card] == 1
    assert partition(store.table) == {first.customer_id: {"loyalty_card#5550001"}}
    assert attributed_to(again.event_id) == first.customer_id


def _card_and_email_customers(card: str, email: str) -> tuple[str, str, tuple[str, str]]:
    """Two customers, the older with a card, the newer with an email; and the email's IDENT key."""
    older = Resolver().resolve(event(("loyalty_card", card), channel="pos")).customer_id
    newer = Resolver().resolve(event(("email", email), minutes=5)).customer_id
    assert older
    assert newer
    return older, newer, ident_key(ident("email", email))


def test_a_stale_miss_of_another_customers_identifier_still_merges(
    store: IdentityStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two customers (a card, an email); a replica has not seen the email's IDENT item yet
    older, newer, email = _card_and_email_customers("5550002", "stale@x.es")
    with stale_reads(monkeypatch, {email: None}):
        # When an event carries both
        result = Resolver().resolve(event(("loyalty_card", "5550002"), ("email", "stale@x.es"), minutes=10))
    # Then the attach of the email to the card's customer was refused; the retry merged them
    assert result.customer_id == older
    assert result.merged == [newer]
    assert result.attached == []
    assert partition(store.table) == {older: {"loyalty_card#5550002", "email#stale@x.es"}}


def test_a_stale_owner_from_before_a_merge_is_followed_to_the_survivor(
    store: IdentityStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two customers merged, and a replica still naming the absorbed one as the email's owner
    older, newer, email = _card_and_email_customers("5550003", "old@x.es")
    before = Table().get(*email)
    Resolver().resolve(event(("loyalty_card", "5550003"), ("email", "old@x.es"), minutes=10))
    with stale_reads(monkeypatch, {email: before}):
        # When an event of the email is resolved
        later = event(("email", "old@x.es"), minutes=20)
        result = Resolver().resolve(later)
    # Then the absorbed customer's profile (read consistently) sends it to the survivor
    assert newer != older
    assert result.customer_id == older
    assert attributed_to(later.event_id) == older
