"""First sign-in: the verified email / phone of the token, resolved through the identity graph."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.auth.principal import Principal
from loyalty.errors import Forbidden
from loyalty.eventlog.store import EventLog
from loyalty.identity.resolve import Resolver as IdentityResolver
from loyalty.identity.service import CustomerService
from loyalty.identity.store import IdentityStore
from loyalty.models.identifiers import Identifier, IdentifierType
from loyalty.selfservice.signin import CustomerFinder, Me, customer_principal
from tests.support.identity import event as identity_event
from tests.support.lambdas import load_event
from tests.support.races import race

STAFF_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Staff"
EMAIL = "lucia@correo-ejemplo.es"
PHONE = "+34611222333"


def principal(
    sub: str = "sub-lucia",
    email: str | None = EMAIL,
    email_verified: bool = True,
    phone: str | None = None,
    phone_verified: bool = False,
) -> Principal:
    claims: dict[str, str] = {"sub": sub, "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_C"}
    if email:
        claims |= {"email": email, "email_verified": str(email_verified).lower()}
    if phone:
        claims |= {"phone_number": phone, "phone_number_verified": str(phone_verified).lower()}
    event = copy.deepcopy(load_event("api/me_get.json"))
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    return customer_principal(event, STAFF_ISSUER)


def owner(kind: IdentifierType, value: str) -> str | None:
    ident = Identifier(type=kind, value=value)
    return IdentityStore().owners([ident]).get(ident)


def registrations() -> list[Any]:
    from datetime import UTC, datetime

    events, _ = EventLog().of_day(datetime.now(UTC).date())
    return [e for e in events if e.type.value == "customer.registered"]


def test_a_first_sign_in_creates_a_customer_once_and_later_calls_only_read(stack: Resolver) -> None:
    first = CustomerFinder().find(principal())
    assert first.signed_up
    assert owner(IdentifierType.EMAIL, EMAIL) == first.customer_id
    again = CustomerFinder().find(principal())
    assert (again.customer_id, again.signed_up) == (first.customer_id, False)
    (registered,) = registrations()
    assert EventLog().get(registered.event_id)["customer_id"] == first.customer_id
    assert registered.source_event_id.startswith("cognito:")
    assert EMAIL not in registered.source_event_id  # no personal data outside identifiers
    timeline = IdentityStore().timeline([first.customer_id], 10)
    assert [t["event_id"] for t in timeline] == [registered.event_id]


def test_an_existing_customer_is_found_by_the_verified_email(stack: Resolver) -> None:
    known = IdentityResolver().resolve(identity_event(("email", EMAIL), ("loyalty_card", "CARD-77")))
    me = CustomerFinder().find(principal())
    assert me.customer_id == known.customer_id


def test_an_unverified_email_never_links(stack: Resolver) -> None:
    known = IdentityResolver().resolve(identity_event(("email", EMAIL)))
    me = CustomerFinder().find(principal(email_verified=False, phone=PHONE, phone_verified=True))
    assert me.customer_id != known.customer_id
    assert owner(IdentifierType.EMAIL, EMAIL) == known.customer_id
    assert owner(IdentifierType.PHONE, PHONE) == me.customer_id
    assert [i.type for i in IdentityStore().identifiers_of(me.customer_id)] == [IdentifierType.PHONE]
    with pytest.raises(Forbidden):
        CustomerFinder().find(principal(email_verified=False))


def test_a_phone_verified_later_is_attached_to_the_same_customer(stack: Resolver) -> None:
    me = CustomerFinder().find(principal())
    later = CustomerFinder().find(principal(phone=PHONE, phone_verified=True))
    assert (later.customer_id, later.signed_up) == (me.customer_id, True)
    assert owner(IdentifierType.PHONE, PHONE) == me.customer_id
    assert len(registrations()) == 2


def test_verified_identifiers_of_two_customers_merge_like_any_channel_event(stack: Resolver) -> None:
    by_email = IdentityResolver().resolve(identity_event(("email", EMAIL)))
    by_phone = IdentityResolver().resolve(identity_event(("phone", PHONE), minutes=5))
    me = CustomerFinder().find(principal(phone=PHONE, phone_verified=True))
    assert {by_email.customer_id, by_phone.customer_id} == set(me.customer_ids)
    assert owner(IdentifierType.EMAIL, EMAIL) in me.customer_ids
    assert IdentityStore().resolve(str(by_phone.customer_id)) == me.customer_id


def test_concurrent_first_calls_of_one_person_make_one_customer(stack: Resolver) -> None:
    results = race(6, lambda _i: CustomerFinder().find(principal()))
    assert all(isinstance(r, Me) for r in results), results
    ids = {r.customer_id for r in results}
    assert len(ids) == 1
    (cid,) = ids
    assert owner(IdentifierType.EMAIL, EMAIL) == cid
    profiles = [i for i in IdentityStore().table.query_all(f"CUST#{cid}") if i["sk"] == "PROFILE"]
    assert len(profiles) == 1
    (registered,) = registrations()
    timeline = IdentityStore().timeline([cid], 10)
    assert [t["event_id"] for t in timeline] == [registered.event_id]


def test_a_first_sign_in_racing_a_channel_event_of_the_same_email_ends_as_one_customer(
    stack: Resolver,
) -> None:
    channel = identity_event(("email", EMAIL), ("loyalty_card", "CARD-9"))
    results = race(
        2,
        lambda i: (
            CustomerFinder().find(principal()).customer_id if i else IdentityResolver().resolve(channel)
        ),
    )
    signed_in = results[1]
    assert isinstance(signed_in, str), results
    assert owner(IdentifierType.EMAIL, EMAIL) == signed_in
    assert IdentityStore().resolve(str(owner(IdentifierType.LOYALTY_CARD, "CARD-9"))) == signed_in


def test_after_an_erasure_the_same_sign_in_starts_a_new_customer(stack: Resolver) -> None:
    before = CustomerFinder().find(principal())
    CustomerService().erase(before.customer_id)
    after = CustomerFinder().find(principal())
    assert after.customer_id != before.customer_id
    assert owner(IdentifierType.EMAIL, EMAIL) == after.customer_id


def test_a_newly_verified_address_lifts_its_hard_bounce_mark_and_an_old_one_stays(stack: Resolver) -> None:
    from datetime import UTC, datetime, timedelta

    from loyalty.notify.feedback import mark_undeliverable
    from loyalty.notify.store import address_key
    from loyalty.store.table import Table

    # Given a customer known by email whose phone hard-bounced on SMS and WhatsApp before
    IdentityResolver().resolve(identity_event(("email", EMAIL)))
    earlier = datetime.now(UTC) - timedelta(days=2)
    for channel in ("sms", "whatsapp"):
        mark_undeliverable(channel, PHONE, reason="unknown", provider="test", at=earlier)
    mark_undeliverable("email", EMAIL, reason="unknown", provider="test", at=earlier)
    # When she signs in with that phone newly verified (the pool delivered a code to it)
    me = CustomerFinder().find(principal(phone=PHONE, phone_verified=True))
    assert me.signed_up
    # Then the phone is deliverable again on both channels it serves
    assert Table().get(*address_key("sms", PHONE)) is None
    assert Table().get(*address_key("whatsapp", PHONE)) is None
    # And the email, already known (nothing new proves it works), stays marked
    assert Table().get(*address_key("email", EMAIL)) is not None
