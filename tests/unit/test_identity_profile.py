"""Golden-profile precedence and the linking policy: pure domain, no AWS."""

from __future__ import annotations

import itertools

import pytest

from loyalty.identity import profile as rules
from loyalty.identity.policy import LinkPolicy
from tests.support.identity import ident


def _fact(
    value: str, at: str, verified: bool = False, source: str = "web"
) -> dict[str, tuple[str, dict[str, object]]]:
    return {"first_name": (value, {"source": source, "at": at, "verified": verified})}


def test_most_recent_value_wins_whatever_the_order() -> None:
    facts = [_fact("Ana", "2026-01-01"), _fact("Anita", "2026-03-01"), _fact("A.", "2026-02-01")]
    results = set()
    for order in itertools.permutations(facts):
        prof: rules.Profile = {}
        for f in order:
            rules.apply_facts(prof, f)
        results.add((prof["first_name"], prof["field_sources"]["first_name"]["at"]))
    assert results == {("Anita", "2026-03-01")}


def test_a_verified_value_beats_a_more_recent_unverified_one() -> None:
    prof: rules.Profile = {}
    rules.apply_facts(prof, _fact("Ana", "2026-01-01", verified=True, source="pos"))
    changed = rules.apply_facts(prof, _fact("Typo", "2026-05-01"))
    assert changed == []
    assert prof["first_name"] == "Ana"
    assert prof["field_sources"]["first_name"]["source"] == "pos"


def test_consent_latest_statement_wins_and_a_tie_goes_to_the_opt_out() -> None:
    prof: rules.Profile = {}
    rules.apply_consents(prof, {"email": {"granted": True, "source": "web", "at": "2026-01-01"}})
    rules.apply_consents(prof, {"email": {"granted": False, "source": "email", "at": "2026-02-01"}})
    rules.apply_consents(prof, {"email": {"granted": True, "source": "app", "at": "2026-02-01"}})
    assert prof["consents"]["email"]["granted"] is False
    rules.apply_consents(prof, {"email": {"granted": True, "source": "app", "at": "2026-03-01"}})
    assert prof["consents"]["email"]["granted"] is True


def test_merging_consents_an_opt_out_anywhere_wins() -> None:
    # Given one part opted out long ago and another opted in recently
    merged = rules.merge_consents(
        [
            {"email": {"granted": False, "source": "email", "at": "2026-01-01"}},
            {
                "email": {"granted": True, "source": "web", "at": "2026-06-01"},
                "sms": {"granted": True, "source": "pos", "at": "2026-02-01"},
            },
        ]
    )
    # Then the merged customer is opted out, stamped with the latest time the parts knew
    assert merged["email"] == {"granted": False, "source": "email", "at": "2026-06-01"}
    assert merged["sms"]["granted"] is True


def test_combine_then_split_returns_what_came_from_the_absorbed_part() -> None:
    survivor = {
        "customer_id": "a",
        "first_name": "Ana",
        "field_sources": {"first_name": {"source": "web", "at": "2026-01-01", "verified": False}},
        "consents": {"email": {"granted": True, "source": "web", "at": "2026-01-01"}},
    }
    other = {
        "customer_id": "b",
        "first_name": "Bea",
        "locale": "ca",
        "field_sources": {
            "first_name": {"source": "pos", "at": "2026-02-01", "verified": False},
            "locale": {"source": "pos", "at": "2026-02-01", "verified": False},
        },
        "consents": {"email": {"granted": False, "source": "pos", "at": "2026-02-01"}},
    }
    combined = rules.combine(survivor, [other])
    assert (combined["first_name"], combined["locale"], combined["consents"]["email"]["granted"]) == (
        "Bea",
        "ca",
        False,
    )
    restored = rules.split(combined, survivor, [other], combined["consents"])
    assert restored["first_name"] == "Ana"
    assert "locale" not in restored
    assert restored["consents"] == survivor["consents"]


def test_split_keeps_what_changed_after_the_merge() -> None:
    survivor = {"customer_id": "a", "field_sources": {}, "consents": {}}
    other = {
        "customer_id": "b",
        "first_name": "Bea",
        "field_sources": {"first_name": {"source": "pos", "at": "2026-02-01", "verified": False}},
        "consents": {},
    }
    combined = rules.combine(survivor, [other])
    rules.apply_facts(combined, _fact("Beatriz", "2026-04-01", source="app"))
    restored = rules.split(combined, survivor, [other], {})
    assert restored["first_name"] == "Beatriz"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "noemail@shop.es"),
        ("email", "NoEmail@Anything.com"),
        ("phone", "+34000000000"),
        ("loyalty_card", "000000000"),
        ("pos_customer", "GUEST01"),
    ],
)
def test_junk_identifiers_are_blocked(kind: str, value: str) -> None:
    assert LinkPolicy().blocked(ident(kind, value))


def test_deployment_blocklist_adds_the_stores_own_phone_and_patterns() -> None:
    policy = LinkPolicy.from_settings("phone=+34910000000, email=*@mystore.es", "", 3)
    assert policy.blocked(ident("phone", "910 000 000"))
    assert policy.blocked(ident("email", "till3@mystore.es"))
    assert not policy.blocked(ident("email", "ana@gmail.com"))


def test_limits_one_card_per_customer_and_overrides() -> None:
    policy = LinkPolicy.from_settings("", "email=2", 3)
    assert policy.violations([ident("loyalty_card", "1"), ident("loyalty_card", "2")]) == ["loyalty_card"]
    assert policy.violations([ident("email", f"a{i}@x.com") for i in range(3)]) == ["email"]
    assert policy.room_for([ident("email", "a@x.com")], ident("email", "b@x.com"))
    assert not policy.room_for([ident("pos_customer", "1")], ident("pos_customer", "2"))


def test_bad_policy_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="type=value"):
        LinkPolicy.from_settings("noemail", "", 3)
