"""One message per intent, rendered on every channel in es and en from the same data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.notify.catalogue import CATALOGUE
from loyalty.notify.templates import REPLIES, SMS_MAX_CHARS, TEMPLATES, language_of, render

DATA = {
    "first_name": "Ana",
    "points": 120,
    "order_id": "T-0042",
    "from_tier": "bronze",
    "to_tier": "silver",
    "expires_on": "2026-12-20",
    "sku": "SKU-1",
    "location_id": "STORE-01",
    "quantity": 2,
    "status": "placed",
    "total": "59.90",
    "currency": "EUR",
}


def test_every_intent_of_the_catalogue_has_templates_in_es_and_en() -> None:
    for rule in CATALOGUE:
        texts = REPLIES if rule.reply else TEMPLATES  # a reply (a STOP confirmation) is free-form text
        assert set(texts[rule.intent]) >= {"es", "en"}, rule.intent


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("intent", sorted(TEMPLATES))
def test_a_template_renders_on_every_channel_from_the_same_data(intent: str, lang: str) -> None:
    # Given the same data / When rendered for every channel
    email = render(intent, "email", lang, DATA)
    sms = render(intent, "sms", lang, DATA)
    push = render(intent, "push", lang, DATA)
    whatsapp = render(intent, "whatsapp", lang, DATA)
    # Then every rendering is complete and carries the same facts
    assert email["subject"]
    assert email["text"]
    assert email["html"].startswith("<!doctype html>")
    assert f'lang="{lang}"' in email["html"]
    assert 0 < len(sms["text"]) <= SMS_MAX_CHARS
    assert push["title"]
    assert push["body"]
    assert whatsapp["template"].startswith(intent)
    assert whatsapp["language"] == lang
    assert all(whatsapp["parameters"])
    assert "{" not in email["text"] + sms["text"] + push["body"] + push["title"]
    for fact in ("Ana",):
        assert fact in email["text"]
        assert fact in sms["text"]
        assert fact in whatsapp["parameters"]


def test_points_earned_says_the_same_number_everywhere_in_spanish() -> None:
    texts = [
        render("points_earned", "email", "es-ES", DATA)["text"],
        render("points_earned", "sms", "es-ES", DATA)["text"],
        render("points_earned", "push", "es-ES", DATA)["body"],
    ]
    assert all("120" in t and "T-0042" in t for t in texts)
    assert "disponibles" in texts[1]
    assert render("points_earned", "whatsapp", "es", DATA)["parameters"] == ["Ana", "120", "T-0042"]


def test_english_and_unknown_locales() -> None:
    assert "available" in render("points_earned", "sms", "en-GB", DATA)["text"]
    assert language_of("fr-FR") == "es"
    assert language_of(None) == "es"


def test_order_status_words_are_localised() -> None:
    assert "reembolsado" in render("order_status", "sms", "es", {**DATA, "status": "refunded"})["text"]
    assert "refunded" in render("order_status", "sms", "en", {**DATA, "status": "refunded"})["text"]


def test_html_escapes_values_but_plain_text_does_not() -> None:
    data = {**DATA, "first_name": "<b>Ana</b>"}
    email = render("welcome", "email", "en", data)
    assert "<b>Ana</b>" not in email["html"]
    assert "&lt;b&gt;Ana&lt;/b&gt;" in email["html"]
    assert "<b>Ana</b>" in email["text"]


def test_missing_first_name_falls_back_to_a_greeting() -> None:
    assert render("welcome", "sms", "es", {})["text"].startswith("Hola cliente,")
    assert render("welcome", "sms", "en", {"first_name": ""})["text"].startswith("Hi friend,")


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=0, max_size=300), sku=st.text(min_size=1, max_size=200))
def test_sms_never_exceeds_160_chars(name: str, sku: str) -> None:
    for intent in TEMPLATES:
        text = render(intent, "sms", "es", {**DATA, "first_name": name, "sku": sku})["text"]
        assert len(text) <= SMS_MAX_CHARS


def test_unknown_channel_is_an_error() -> None:
    with pytest.raises(KeyError):
        render("welcome", "fax", "es", DATA)


@pytest.mark.parametrize("lang", ["es", "en"])
def test_a_digest_lists_its_members_on_every_channel(lang: str) -> None:
    data = {
        "first_name": "Ana",
        "items": [
            {"intent": "back_in_stock", "data": {"sku": "SKU-1", "location_id": "MAD"}},
            {"intent": "points_expiring", "data": {"points": 300, "expires_on": "2026-12-20"}},
        ],
    }
    email = render("digest", "email", lang, data)
    sms = render("digest", "sms", lang, data)
    push = render("digest", "push", lang, data)
    whatsapp = render("digest", "whatsapp", lang, data)
    assert "2" in email["subject"]
    assert email["text"].count("- ") == 2
    assert "SKU-1" in sms["text"]
    assert "300" in sms["text"]
    assert len(sms["text"]) <= SMS_MAX_CHARS
    assert push["title"].startswith("2")
    assert whatsapp["template"] == "digest_v1"
    assert whatsapp["parameters"][:2] == ["Ana", "2"]
