"""Which table change produces which notification intent: a catalogue declared as data.

Each ``IntentRule`` names the entity it watches, a transition predicate over the stream
record's (new, old) images, the intent's class, the data its templates need, and its audience
(the item's own customer, or the subscribers of a SKU for back-in-stock signals).

Classes: ``critical`` transactional messages bypass the budget and quiet hours;
``transactional`` ones share the customer's budget (overall cap only) and wait for quiet hours
to end; ``marketing`` ones also count against the marketing caps (overall and per channel).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Klass = Literal["critical", "transactional", "marketing"]
Audience = Literal["owner", "sku_subscribers"]
Image = Mapping[str, Any]
Predicate = Callable[[Image, Image | None], bool]

#: How long before a held reservation expires its reminder is due.
RESERVATION_REMINDER = timedelta(hours=2)


@dataclass(frozen=True)
class IntentRule:
    intent: str
    entity: str
    klass: Klass
    when: Predicate
    data: Callable[[Image], dict[str, Any]]
    audience: Audience = "owner"
    #: a reminder: the message is due at this time (deferred until then), not at once
    due_at: Callable[[Image], datetime | None] | None = None
    #: checked again when a deferred message is released: (attribute, value) the source must still have
    still: tuple[str, str] | None = None
    #: the marketing stream a customer can leave on its own (``Consent.topic``); None: no topic
    topic: str | None = None
    #: a reply to the customer's own inbound message: sent on this channel only, to the address
    #: they wrote from (``data["address"]``), whatever their consent (it confirms an opt-out), and
    #: only inside the provider's reply window after ``data["inbound_at"]``
    reply: str | None = None


@dataclass(frozen=True)
class Trigger:
    """One intent produced by one stream record, before its audience is expanded."""

    rule: IntentRule
    source_pk: str
    source_sk: str
    version: str
    customer_id: str | None
    data: dict[str, Any]
    due: datetime | None = None


def inserted(new: Image, old: Image | None) -> bool:
    return old is None


def became(attr: str, value: str) -> Predicate:
    """The attribute took ``value`` in this change (an insert with it counts; staying does not)."""

    def check(new: Image, old: Image | None) -> bool:
        return new.get(attr) == value and (old is None or old.get(attr) != value)

    return check


def inserted_with(attr: str, value: str) -> Predicate:
    def check(new: Image, old: Image | None) -> bool:
        return old is None and new.get(attr) == value

    return check


def _points_earned(new: Image, old: Image | None) -> bool:
    """A lot matured (pending -> available), or was earned available; a lot moved by a merge is not news."""
    if not became("status", "available")(new, old):
        return False
    origin = new.get("origin_customer_id")
    return old is not None or origin in (None, new.get("customer_id"))


def _order_event(new: Image, old: Image | None) -> bool:
    """An order event just attributed to its customer by its MODIFY (events attributed before issue
    16's ``attr`` change); a paid in-store sale says nothing."""
    if old is None or old.get("customer_id") or not new.get("customer_id"):
        return False
    return _order_news(new, _payload(new))


def _order_news(new: Image, fields: Mapping[str, Any]) -> bool:
    """Whether an attributed order event (``fields``: its payload or its timeline summary) is news."""
    kind = str(new.get("type", ""))
    if not kind.startswith("order."):
        return False
    if kind == "order.completed":
        return new.get("channel") != "pos" and fields.get("fulfilment") != "in_store"
    return kind in {"order.placed", "order.cancelled", "order.refunded"}


def _order_attributed(new: Image, old: Image | None) -> bool:
    """An order event attributed by its timeline entry's INSERT (``stage = attributed``)."""
    return old is None and new.get("stage") == "attributed" and _order_news(new, _summary(new))


def _summary(new: Image) -> Mapping[str, Any]:
    summary = new.get("summary")
    return summary if isinstance(summary, Mapping) else {}


def _payload(new: Image) -> dict[str, Any]:
    try:
        document = json.loads(str(new.get("data") or "{}"))
    except ValueError:
        return {}
    payload = document.get("payload") if isinstance(document, dict) else None
    return payload if isinstance(payload, dict) else {}


def _order_data(new: Image) -> dict[str, Any]:
    return _order_fields(new, _payload(new))


def _order_entry_data(new: Image) -> dict[str, Any]:
    return _order_fields(new, _summary(new))


def _order_fields(new: Image, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "order_id": fields.get("order_id", ""),
        "total": fields.get("total", fields.get("amount", "")),
        "currency": fields.get("currency", ""),
        "status": str(new.get("type", "")).removeprefix("order."),
        "channel": new.get("channel"),
    }


#: how long after a customer's WhatsApp message a free-form reply may be sent (Meta's
#: customer service window: 24 h from the customer's last message)
REPLY_WINDOW = timedelta(hours=24)


def _whatsapp_stop(new: Image, old: Image | None) -> bool:
    """A WhatsApp STOP / BAJA (``consent.changed`` from the connector) just attributed to its customer."""
    if old is None or old.get("customer_id") or not new.get("customer_id"):
        return False
    if new.get("type") != "consent.changed" or new.get("channel") != "chat":
        return False
    consents = _payload(new).get("consents") or []
    return any(
        isinstance(c, dict) and c.get("source") == "whatsapp:stop" and c.get("granted") is False
        for c in consents
    )


def _whatsapp_stop_data(new: Image) -> dict[str, Any]:
    """The number the STOP came from and when (the reply window opens then)."""
    try:
        document = json.loads(str(new.get("data") or "{}"))
    except ValueError:
        document = {}
    identifiers = document.get("identifiers") if isinstance(document, dict) else None
    phone = next(
        (i.get("value") for i in identifiers or [] if isinstance(i, dict) and i.get("type") == "phone"), None
    )
    return {"address": phone, "inbound_at": new.get("occurred_at")}


def _pick(*names: str) -> Callable[[Image], dict[str, Any]]:
    def extract(new: Image) -> dict[str, Any]:
        return {n: new.get(n) for n in names if new.get(n) is not None}

    return extract


def _reservation_reminder(new: Image) -> datetime | None:
    """``hold_until`` (ISO, UTC) minus the reminder lead time; None without a hold end."""
    try:
        hold_until = datetime.fromisoformat(str(new["hold_until"]))
    except (KeyError, ValueError):
        return None
    if hold_until.tzinfo is None:
        hold_until = hold_until.replace(tzinfo=UTC)
    return hold_until - RESERVATION_REMINDER


#: tier ladder, lowest first; reaching a higher one is news, a downgrade is not announced
TIER_ORDER = ("bronze", "silver", "gold", "platinum")


def _tier_up(new: Image, old: Image | None) -> bool:
    if old is not None:
        return False
    rank = {t: i for i, t in enumerate(TIER_ORDER)}
    to_tier, from_tier = new.get("to_tier"), new.get("from_tier")
    if to_tier in rank and from_tier in rank:
        return rank[str(to_tier)] > rank[str(from_tier)]
    return bool(to_tier) and to_tier != from_tier


CATALOGUE: tuple[IntentRule, ...] = (
    IntentRule("welcome", "profile", "transactional", inserted, _pick("first_name")),
    IntentRule(
        "points_earned",
        "points_lot",
        "transactional",
        _points_earned,
        _pick("points", "order_id", "channel"),
    ),
    IntentRule("tier_reached", "tier_change", "transactional", _tier_up, _pick("from_tier", "to_tier")),
    IntentRule(
        "points_expiring",
        "points_expiring",
        "marketing",
        inserted,
        _pick("points", "expires_on"),
        topic="points",
    ),
    IntentRule(
        "reservation_ready",
        "reservation",
        "critical",
        became("status", "ready"),
        _pick("sku", "location_id", "quantity"),
    ),
    IntentRule(
        "reservation_expiring",
        "reservation",
        "transactional",
        became("status", "ready"),
        _pick("sku", "location_id", "quantity"),
        due_at=_reservation_reminder,
        still=("status", "ready"),
    ),
    IntentRule(
        "back_in_stock",
        "stock_signal",
        "marketing",
        inserted_with("signal", "back_in_stock"),
        _pick("sku", "location_id"),
        audience="sku_subscribers",
        topic="stock_alerts",
    ),
    IntentRule("order_status", "event", "transactional", _order_event, _order_data),
    # issue 16 (``attr``): an order is attributed by its timeline entry's INSERT, not the event's MODIFY
    IntentRule("order_status", "timeline", "transactional", _order_attributed, _order_entry_data),
    # critical: a reply the customer asked for goes at once (no quiet hours, never refused by the budget)
    IntentRule(
        "whatsapp_stop_confirmed",
        "event",
        "critical",
        _whatsapp_stop,
        _whatsapp_stop_data,
        reply="whatsapp",
    ),
)

#: Entities the fan-out reacts to (the stream event source's filter lists the same ones).
WATCHED_ENTITIES = frozenset(rule.entity for rule in CATALOGUE)
RULES: dict[str, IntentRule] = {rule.intent: rule for rule in CATALOGUE}
#: topics a customer can leave (``Consent.topic``); "offers" is for campaigns
TOPICS = ("points", "offers", "stock_alerts")


def reply_channel(intent: str) -> str | None:
    """The channel a reply intent answers on (None: an ordinary intent, consent applies)."""
    rule = RULES.get(intent)
    return rule.reply if rule is not None else None


def topic_of(intent: str) -> str | None:
    rule = RULES.get(intent)
    return rule.topic if rule is not None else None


def version_of(image: Image) -> str:
    """What distinguishes two changes of the same item (replays of one change share it)."""
    for attr in ("version", "updated_at", "status"):
        if image.get(attr) is not None:
            return str(image[attr])
    return "0"


def match(new: Image | None, old: Image | None) -> list[Trigger]:
    """The intents one stream record produces (empty for removals and unwatched entities)."""
    if not new or new.get("entity") not in WATCHED_ENTITIES:
        return []
    old = old or None  # an INSERT's missing old image may arrive as an empty mapping
    out = []
    for rule in CATALOGUE:
        if rule.entity != new.get("entity") or not rule.when(new, old):
            continue
        due = rule.due_at(new) if rule.due_at else None
        if rule.due_at is not None and due is None:
            continue
        customer = new.get("customer_id")
        out.append(
            Trigger(
                rule=rule,
                source_pk=str(new["pk"]),
                source_sk=str(new["sk"]),
                version=version_of(new),
                customer_id=str(customer) if customer else None,
                data=rule.data(new),
                due=due,
            )
        )
    return out
