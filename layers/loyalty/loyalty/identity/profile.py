"""The golden profile's combination rules (pure: no AWS).

Attributes: each field keeps its value and its provenance ``{"source", "at", "verified"}`` in
``field_sources``. A candidate value replaces the current one when its rank is higher, rank =
(verified, at, source, value): a verified value beats an unverified one, then the most recent
``occurred_at`` wins, then a fixed tie-break. Ranking by a total order makes the result the
same whatever the order facts arrive in (a max is commutative and idempotent).

Consents, per channel ``{"granted", "source", "at"}``:
- within one customer the most recent statement wins (a tie goes to the opt-out);
- when customers merge, an opt-out held by ANY part wins (conservative: one person's opt-in never
  speaks for another's opt-out), stamped with the latest ``at`` of the parts, so only a statement
  made after everything the parts knew re-grants it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from loyalty.models.events import ProfilePayload

FIELDS = ("first_name", "last_name", "locale", "timezone", "birthday", "postal_code", "preferred_channel")
CONSENT_CHANNELS = ("email", "sms", "push", "whatsapp")

Profile = dict[str, Any]


def iso(moment: datetime) -> str:
    """Fixed-width UTC timestamp: lexical order is time order (sort keys, precedence)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rank(value: Any, source: Mapping[str, Any]) -> tuple[bool, str, str, str]:
    return (
        bool(source.get("verified")),
        str(source.get("at", "")),
        str(source.get("source", "")),
        str(value),
    )


def facts_of(payload: ProfilePayload, channel: str, at: datetime) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Field -> (value, provenance) stated by one profile payload."""
    source = {"source": channel, "at": iso(at), "verified": payload.verified}
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name in FIELDS:
        value = getattr(payload, name, None)
        if value not in (None, ""):
            out[name] = (value, dict(source))
    return out


def consents_of(payload: ProfilePayload, channel: str, at: datetime) -> dict[str, dict[str, Any]]:
    """Channel -> consent statement of one profile payload."""
    return {
        (f"{c.channel}:{c.topic}" if c.topic else c.channel): {
            "granted": c.granted,
            "source": c.source or channel,
            "at": iso(at),
        }
        for c in payload.consents
    }


def apply_facts(profile: Profile, facts: Mapping[str, tuple[Any, Mapping[str, Any]]]) -> list[str]:
    """Apply field facts in place by precedence; returns the fields that changed."""
    sources: dict[str, Any] = profile.setdefault("field_sources", {})
    changed = []
    for name, (value, source) in facts.items():
        current = sources.get(name)
        if current is None or _rank(value, source) > _rank(profile.get(name), current):
            if profile.get(name) != value or current != dict(source):
                changed.append(name)
            profile[name] = value
            sources[name] = dict(source)
    return changed


def _consent_rank(entry: Mapping[str, Any]) -> tuple[str, bool, str]:
    # later wins; at the same instant the opt-out (granted=False sorts first, so negate)
    return (str(entry.get("at", "")), not entry.get("granted", False), str(entry.get("source", "")))


def apply_consents(profile: Profile, statements: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Apply consent statements of the same customer (latest wins); returns channels changed."""
    consents: dict[str, Any] = profile.setdefault("consents", {})
    changed = []
    for channel, entry in statements.items():
        current = consents.get(channel)
        if current is None or _consent_rank(entry) > _consent_rank(current):
            if current != dict(entry):
                changed.append(channel)
            consents[channel] = dict(entry)
    return changed


def merge_consents(parts: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Consents of merged customers: any opt-out wins, stamped with the latest ``at`` of the parts."""
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for consents in parts:
        for channel, entry in consents.items():
            by_channel.setdefault(channel, []).append(dict(entry))
    out: dict[str, dict[str, Any]] = {}
    for channel, entries in by_channel.items():
        latest_at = max(str(e.get("at", "")) for e in entries)
        refusals = [e for e in entries if not e.get("granted", False)]
        if refusals:
            chosen = max(refusals, key=_consent_rank)
            out[channel] = {"granted": False, "source": chosen.get("source", ""), "at": latest_at}
        else:
            best: dict[str, Any] = max(entries, key=_consent_rank)
            out[channel] = dict(best)
    return out


def combine(survivor: Profile, absorbed: Iterable[Profile]) -> Profile:
    """The survivor's profile after absorbing others: fields by precedence, consents conservatively."""
    parts = list(absorbed)
    out = dict(survivor)
    out["field_sources"] = dict(survivor.get("field_sources") or {})
    for other in parts:
        sources = other.get("field_sources") or {}
        apply_facts(out, {name: (other.get(name), src) for name, src in sources.items() if name in FIELDS})
    out["consents"] = merge_consents(
        [survivor.get("consents") or {}, *(p.get("consents") or {} for p in parts)]
    )
    return out


def split(
    current: Profile, before: Profile, absorbed: Iterable[Profile], merged_consents: Mapping[str, Any]
) -> Profile:
    """Undo a merge on the survivor: values that came from the absorbed parts revert to ``before``.

    A field (or consent) changed since the merge by a newer fact is kept: that fact was about the
    survivor after the merge. Only what still equals what the merge brought in goes back.
    """
    out = dict(current)
    sources = dict(current.get("field_sources") or {})
    before_sources = before.get("field_sources") or {}
    brought = {
        name: (part.get(name), src)
        for part in absorbed
        for name, src in (part.get("field_sources") or {}).items()
    }
    for name, (value, src) in brought.items():
        if (
            name in sources
            and sources[name] == src
            and out.get(name) == value
            and before_sources.get(name) != src
        ):
            if name in before_sources:
                out[name] = before.get(name)
                sources[name] = before_sources[name]
            else:
                out.pop(name, None)
                sources.pop(name, None)
    out["field_sources"] = sources
    consents = dict(current.get("consents") or {})
    before_consents = before.get("consents") or {}
    for channel, entry in merged_consents.items():
        if consents.get(channel) == entry:
            if channel in before_consents:
                consents[channel] = before_consents[channel]
            else:
                consents.pop(channel, None)
    out["consents"] = consents
    return out
