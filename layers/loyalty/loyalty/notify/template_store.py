"""Message texts as data: versioned per intent, channel and language, edited by marketing.

Items (docs/data-model.md, "Message templates"):
- ``TPL#<intent>#<channel>#<lang>`` / ``CURRENT`` (``message_template``): the published version
  and its content: the one item a sender reads (one GetItem per message).
- ``TPL#<intent>#<channel>#<lang>`` / ``V#<000000n>`` (``message_template_version``): every
  published version, immutable (what a message said can always be looked up by its version).

Without a ``CURRENT`` item the built-in text of ``loyalty.notify.templates`` is used, as version 0:
the code's texts are the seeded defaults. Publishing writes version n+1 and moves ``CURRENT`` in
one transaction conditioned on ``CURRENT`` still being n, so two editors never both win.

Content per channel: email ``{subject, text}``, sms ``{text}``, push ``{title, body}``, whatsapp
``{template, parameters}`` (the approved WhatsApp template's name and its body parameters).
Placeholders (``{points}``) must be among those the intent's data provides; an SMS rendered with
the sample data must fit in 160 characters.
"""

from __future__ import annotations

import string
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.notify.policy import CHANNELS
from loyalty.notify.templates import LANGUAGES, SMS_MAX_CHARS, TEMPLATES, Template, render
from loyalty.store.table import Item, Table, TransactionCancelled, tx_put, tx_put_new

ENTITY = "message_template"
VERSION_ENTITY = "message_template_version"
CURRENT = "CURRENT"
#: content keys per channel -> the Template field each one sets
FIELDS: dict[str, dict[str, str]] = {
    "email": {"subject": "subject", "text": "text"},
    "sms": {"text": "short"},
    "push": {"title": "title", "body": "short"},
    "whatsapp": {"template": "whatsapp", "parameters": "params"},
}
#: what previews render with (and what the SMS length check measures)
SAMPLE: dict[str, Any] = {
    "first_name": "Alejandra",
    "points": 1250,
    "order_id": "W-100234",
    "from_tier": "silver",
    "to_tier": "gold",
    "expires_on": "2026-12-31",
    "sku": "SKU-48213",
    "location_id": "MAD-SOL",
    "quantity": 2,
    "status": "completed",
    "total": "129.90",
    "currency": "EUR",
    "channel": "web",
}


def template_key(intent: str, channel: str, lang: str) -> str:
    return f"TPL#{intent}#{channel}#{lang}"


def version_sk(version: int) -> str:
    return f"V#{version:08d}"


def _placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders of ``text``; positional, indexed or formatted ones are refused."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:
        raise InvalidInput(f"malformed placeholder: {err}", code="invalid_template") from err
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise InvalidInput(f"placeholders are plain names, not {{{name}...}}", code="unknown_placeholder")
        names.add(name)
    return names


def allowed_placeholders(intent: str) -> set[str]:
    """The names the intent's data provides: those its built-in texts use, in any language."""
    names = {"first_name"}
    for template in TEMPLATES[intent].values():
        for text in (template.subject, template.title, template.short, template.text):
            names |= _placeholders(text)
        names |= set(template.params)
    return names


def _check_target(intent: str, channel: str, lang: str) -> None:
    if intent not in TEMPLATES:
        raise NotFound(f"no intent {intent!r}", code="unknown_intent")
    if channel not in CHANNELS:
        raise NotFound(f"no channel {channel!r}", code="unknown_channel")
    if lang not in LANGUAGES:
        raise NotFound(f"no language {lang!r}", code="unknown_language")


def to_template(intent: str, channel: str, lang: str, content: dict[str, Any]) -> Template:
    """The built-in template with ``content`` applied, validated (``InvalidInput`` -> 422)."""
    _check_target(intent, channel, lang)
    fields = FIELDS[channel]
    unknown_keys = set(content) - set(fields)
    missing = set(fields) - set(content)
    if unknown_keys or missing:
        raise InvalidInput(
            f"{channel} content has exactly {', '.join(sorted(fields))}", code="invalid_template"
        )
    allowed = allowed_placeholders(intent)
    changes: dict[str, Any] = {}
    for key, attr in fields.items():
        value = content[key]
        if key == "parameters":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidInput("parameters is a list of data names", code="invalid_template", field=key)
            names = set(value)
            changes[attr] = tuple(value)
        else:
            if not isinstance(value, str) or not value.strip() or len(value) > 5000:
                raise InvalidInput(
                    f"{key} is a text of 1 to 5000 characters", code="invalid_template", field=key
                )
            names = _placeholders(value) if key != "template" else set()
            changes[attr] = value
        bad = sorted(n for n in names if n not in allowed)
        if bad:
            raise InvalidInput(
                f"unknown placeholder {{{bad[0]}}}; {intent} provides {', '.join(sorted(allowed))}",
                code="unknown_placeholder",
                field=key,
            )
    template = replace(TEMPLATES[intent][lang], **changes)
    if channel == "sms":
        sample = template.short.format_map(defaultdict(str, {**SAMPLE, "status_text": "pagado"}))
        if len(sample) > SMS_MAX_CHARS:
            raise InvalidInput(
                f"the SMS is {len(sample)} characters with sample data (at most {SMS_MAX_CHARS})",
                code="sms_too_long",
                field="text",
            )
    return template


def content_of(template: Template, channel: str) -> dict[str, Any]:
    return {
        key: list(getattr(template, attr)) if key == "parameters" else getattr(template, attr)
        for key, attr in FIELDS[channel].items()
    }


def preview(intent: str, channel: str, lang: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The message rendered with sample data: a draft (``content``) or what is published."""
    _check_target(intent, channel, lang)
    template = to_template(intent, channel, lang, content) if content is not None else None
    if template is None:
        template, _ = TemplateStore().current(intent, channel, lang)
    return render(intent, channel, lang, SAMPLE, template)


class TemplateStore:
    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()

    def current(self, intent: str, channel: str, lang: str) -> tuple[Template | None, int]:
        """(the published template or None for the built-in, its version; 0 is the built-in)."""
        item = self.table.get(template_key(intent, channel, lang), CURRENT)
        if item is None or intent not in TEMPLATES:
            return None, 0
        base = TEMPLATES[intent][lang]
        changes: dict[str, Any] = {
            attr: tuple(item["content"][key]) if key == "parameters" else item["content"][key]
            for key, attr in FIELDS[channel].items()
            if key in item["content"]
        }
        return replace(base, **changes), int(item["version"])

    def list(self) -> list[dict[str, Any]]:
        """Every (intent, channel, language) with its current version and content."""
        keys = [
            (template_key(i, c, lang), CURRENT)
            for i in sorted(TEMPLATES)
            for c in CHANNELS
            for lang in LANGUAGES
        ]
        stored = {i["pk"]: i for i in self.table.batch_get(keys)}
        out = []
        for pk, _ in keys:
            _, intent, channel, lang = pk.split("#")
            item = stored.get(pk)
            content = item["content"] if item else content_of(TEMPLATES[intent][lang], channel)
            out.append(
                {
                    "intent": intent,
                    "channel": channel,
                    "language": lang,
                    "version": int(item["version"]) if item else 0,
                    "content": content,
                    "published_at": item.get("published_at") if item else None,
                    "published_by": item.get("published_by") if item else None,
                }
            )
        return out

    def publish(
        self,
        intent: str,
        channel: str,
        lang: str,
        content: dict[str, Any],
        by: str,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Validate and publish ``content`` as the next version (``Conflict``: someone published first)."""
        template = to_template(intent, channel, lang, content)
        now = now or datetime.now(UTC)
        pk = template_key(intent, channel, lang)
        current = self.table.get(pk, CURRENT)
        version = int(current["version"]) + 1 if current else 1
        body: Item = {
            "intent": intent,
            "channel": channel,
            "language": lang,
            "version": version,
            "content": content_of(template, channel),
            "published_at": now.isoformat(),
            "published_by": by,
        }
        condition = "#v = :prev" if current else "attribute_not_exists(pk)"
        values = {":prev": version - 1} if current else None
        names = {"#v": "version"} if current else None
        try:
            self.table.transact(
                [
                    tx_put_new({"pk": pk, "sk": version_sk(version), "entity": VERSION_ENTITY, **body}),
                    tx_put({"pk": pk, "sk": CURRENT, "entity": ENTITY, **body}, condition, names, values),
                ]
            )
        except TransactionCancelled as err:
            raise Conflict(
                "another version was published meanwhile; reload", code="template_changed"
            ) from err
        return body
