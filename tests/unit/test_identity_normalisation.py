"""Identifier normalisation: the same person, typed differently on each channel, is one value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.models.identifiers import Identifier, IdentifierType, InvalidIdentifier, normalize

FULLWIDTH_MARTA = "\uff4d\uff41\uff52\uff54\uff41@icloud.com"  # typed on a phone with a CJK keyboard
SAME_PERSON = [
    (
        IdentifierType.EMAIL,
        [
            "Ana.Garcia@Gmail.com",
            " anagarcia+shop@googlemail.com ",
            "mailto:ANA.GARCIA@gmail.com",
            "<ana.garcia@gmail.com>",
            "anagarcia@gmail.com.",
        ],
        "anagarcia@gmail.com",
    ),
    (
        IdentifierType.EMAIL,
        ["Luis.Perez+news@outlook.com", "luis.perez@OUTLOOK.com"],
        "luis.perez@outlook.com",
    ),
    (IdentifierType.EMAIL, [FULLWIDTH_MARTA, "marta+app@icloud.com"], "marta@icloud.com"),
    (
        IdentifierType.PHONE,
        [
            "+34 612 345 678",
            "612345678",
            "0034612345678",
            "(+34) 612-345-678",
            "34612345678",
            "tel:+34612345678",
            "612 34 56 78 ext. 21",
        ],
        "+34612345678",
    ),
    (IdentifierType.PHONE, ["+44 (0)20 7946 0958", "+44 20 7946 0958", "0044 20 7946 0958"], "+442079460958"),
    (IdentifierType.LOYALTY_CARD, ["7700 1234 5678", "7700-1234-5678", "770012345678"], "770012345678"),
    (IdentifierType.POS_CUSTOMER, ["c-20931", "C20931", " c 20931 "], "C20931"),
    (
        IdentifierType.DEVICE_ID,
        ["{6F9619FF-8B86-D011-B42D-00C04FC964FF}", "6f9619ff-8b86-d011-b42d-00c04fc964ff"],
        "6f9619ff-8b86-d011-b42d-00c04fc964ff",
    ),
    (
        IdentifierType.SOCIAL_HANDLE,
        ["instagram:@Ana_G", "Instagram:ana_g", "https://www.instagram.com/Ana_G/", "instagram.com/@ana_g"],
        "instagram:ana_g",
    ),
    (IdentifierType.SOCIAL_HANDLE, ["https://x.com/LuisP", "twitter:@luisp"], "twitter:luisp"),
]


@pytest.mark.parametrize(("kind", "variants", "expected"), SAME_PERSON)
def test_variants_of_the_same_identifier_normalise_to_one_value(
    kind: IdentifierType, variants: list[str], expected: str
) -> None:
    # Given the same identifier typed differently in different channels
    # When each is normalised
    values = {Identifier(type=kind, value=v).value for v in variants}
    # Then they are all one value
    assert values == {expected}


def test_other_providers_keep_dots_and_tags() -> None:
    assert normalize(IdentifierType.EMAIL, "Ana.Garcia+x@company.es") == "ana.garcia+x@company.es"


def test_identifiers_of_different_types_with_the_same_value_are_different_keys() -> None:
    card = Identifier(type=IdentifierType.LOYALTY_CARD, value="C20931")
    pos = Identifier(type=IdentifierType.POS_CUSTOMER, value="C20931")
    assert card.key != pos.key


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IdentifierType.EMAIL, "not-an-email"),
        (IdentifierType.EMAIL, "+tag@gmail.com"),
        (IdentifierType.EMAIL, "a@b"),
        (IdentifierType.PHONE, "12"),
        (IdentifierType.PHONE, "+34 612 +345"),
        (IdentifierType.PHONE, "call me"),
        (IdentifierType.LOYALTY_CARD, "12/34"),
        (IdentifierType.DEVICE_ID, "  "),
        (IdentifierType.SOCIAL_HANDLE, "ana"),
    ],
)
def test_invalid_values_are_refused(kind: IdentifierType, value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize(kind, value)


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(list(IdentifierType)),
    value=st.text(alphabet="abcdefgh0123456789.+-@ ", min_size=1, max_size=30),
)
def test_normalisation_is_idempotent(kind: IdentifierType, value: str) -> None:
    # Given any value that normalises
    try:
        once = normalize(kind, value)
    except InvalidIdentifier:
        return
    # Then normalising the result changes nothing (stored values are canonical)
    assert normalize(kind, once) == once
