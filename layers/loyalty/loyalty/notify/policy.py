"""Pure decisions: which channels, when (quiet hours), and how much (the one message budget).

- Channels: only those with consent ``granted`` on the profile (identity merges consents so that
  an opt-out anywhere wins) and a contact point to send to; the preferred channel first, then
  ``FALLBACK_ORDER`` (push only where a device id exists).
- Quiet hours: local time in the customer's IANA time zone (the customer's own window when they
  chose one, else the stage's); a non-critical message falling in them is deferred to their end,
  never dropped.
- Frequency (the customer's choice): marketing as it happens, or gathered into a daily or weekly
  digest at ``DIGEST_HOUR`` local time, and at most N marketing messages a week.
- Budget: one counter item per customer per ISO week (UTC), shared by every intent, campaign and
  channel. Transactional messages count against the overall cap; marketing ones also against the
  marketing cap overall and per channel; critical ones bypass it (still counted, never refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.notify.catalogue import Klass

CHANNELS = ("email", "sms", "push", "whatsapp")
FALLBACK_ORDER = ("whatsapp", "sms", "email", "push")
#: identifier type (``ID#<type>#<value>`` items) that gives each channel's address
CONTACT_TYPE = {"email": "email", "sms": "phone", "whatsapp": "phone", "push": "device_id"}
DEFAULT_TZ = "Europe/Madrid"
FREQUENCIES = ("as_it_happens", "daily_digest", "weekly")
#: local hour at which a daily or weekly digest is due (a weekly one on Mondays)
DIGEST_HOUR = 18


@dataclass(frozen=True)
class Preferences:
    """How and when a customer wants their messages (``loyalty.notify.preferences``)."""

    quiet_start: str | None = None  # "HH:MM" local; both set, or neither (the stage's window)
    quiet_end: str | None = None
    frequency: str = "as_it_happens"
    marketing_weekly_max: int | None = None  # None: the stage's cap only


def minutes(hhmm: str) -> int:
    """``"HH:MM"`` -> minutes after midnight."""
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


@dataclass(frozen=True)
class Recipient:
    """What the fan-out needs to know about a customer (from the profile and identity items)."""

    customer_id: str
    status: str
    locale: str | None
    timezone: str | None
    preferred_channel: str | None
    consents: Mapping[str, Mapping[str, Any]]
    contacts: Mapping[str, str]  # identifier type -> value (the most recent one)
    first_name: str | None = None
    #: channels whose address is marked undeliverable (a hard bounce), see ``loyalty.notify.feedback``
    undeliverable: frozenset[str] = frozenset()
    prefs: Preferences = Preferences()

    def consented(self, channel: str) -> bool:
        entry = self.consents.get(channel)
        return isinstance(entry, Mapping) and entry.get("granted") is True

    def subscribed(self, channel: str, topic: str) -> bool:
        """A topic is on unless the customer left it on that channel (``<channel>:<topic>`` refused)."""
        entry = self.consents.get(topic_key(channel, topic))
        return not (isinstance(entry, Mapping) and entry.get("granted") is False)

    def address(self, channel: str) -> str | None:
        return self.contacts.get(CONTACT_TYPE[channel])


@dataclass(frozen=True)
class Limits:
    weekly: int
    marketing_weekly: int
    marketing_per_channel_weekly: int
    quiet_start: int  # local hour quiet hours begin (inclusive)
    quiet_end: int  # local hour they end (exclusive)


def topic_key(channel: str, topic: str) -> str:
    """The consents key of one topic on one channel (``ProfilePayload.consents`` with a topic)."""
    return f"{channel}:{topic}"


def channel_order(recipient: Recipient, topics: Iterable[str] = ()) -> tuple[list[str], str | None]:
    """Channels to use in order, or ([], reason) when none may be used.

    ``topics``: the marketing streams the message belongs to; a channel on which the customer left
    any of them is skipped (reason ``unsubscribed`` when that leaves none). A channel whose address
    hard-bounced is skipped too (``undeliverable``), so the next consented channel is used.
    """
    topics = tuple(topics)
    preferred = recipient.preferred_channel if recipient.preferred_channel in CHANNELS else None
    ordered = ([preferred] if preferred else []) + [c for c in FALLBACK_ORDER if c != preferred]
    consented = [c for c in ordered if recipient.consented(c)]
    if not consented:
        return [], "no_consent"
    subscribed = [c for c in consented if all(recipient.subscribed(c, t) for t in topics)]
    if not subscribed:
        return [], "unsubscribed"
    reachable = [c for c in subscribed if recipient.address(c)]
    if not reachable:
        return [], "no_contact"
    deliverable = [c for c in reachable if c not in recipient.undeliverable]
    if not deliverable:
        return [], "undeliverable"
    return deliverable, None


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def quiet_window(limits: Limits, prefs: Preferences | None = None) -> tuple[int, int]:
    """(start, end) of quiet hours in local minutes after midnight: the customer's, else the stage's."""
    if prefs is not None and prefs.quiet_start and prefs.quiet_end:
        return minutes(prefs.quiet_start), minutes(prefs.quiet_end)
    return limits.quiet_start * 60, limits.quiet_end * 60


def quiet_until(
    now: datetime, tz: str | None, limits: Limits, prefs: Preferences | None = None
) -> datetime | None:
    """When quiet hours end, if ``now`` (aware) falls inside them in the customer's zone; else None."""
    local = now.astimezone(zone(tz))
    start, end = quiet_window(limits, prefs)
    minute = local.hour * 60 + local.minute
    inside = (start <= minute or minute < end) if start > end else (start <= minute < end)
    if not inside or start == end:
        return None
    day = local.date() if minute < end else local.date() + timedelta(days=1)
    release = datetime.combine(day, time(end // 60, end % 60), tzinfo=local.tzinfo)
    return release.astimezone(now.tzinfo)


def digest_until(now: datetime, tz: str | None, prefs: Preferences) -> datetime | None:
    """When a marketing message of a customer who chose a digest is due (None: as it happens)."""
    if prefs.frequency not in {"daily_digest", "weekly"}:
        return None
    local = now.astimezone(zone(tz))
    day = local.date()
    if prefs.frequency == "weekly":
        day += timedelta(days=(7 - local.weekday()) % 7)  # this Monday, or the next one
    due = datetime.combine(day, time(DIGEST_HOUR), tzinfo=local.tzinfo)
    if due <= local:
        due += timedelta(days=7 if prefs.frequency == "weekly" else 1)
    return due.astimezone(now.tzinfo)


def limits_for(limits: Limits, prefs: Preferences) -> Limits:
    """The stage's limits with the customer's own marketing cap, when lower."""
    if prefs.marketing_weekly_max is None or prefs.marketing_weekly_max >= limits.marketing_weekly:
        return limits
    return replace(limits, marketing_weekly=max(prefs.marketing_weekly_max, 0))


def budget_window(now: datetime) -> str:
    """The budget window of ``now``: its ISO week, e.g. ``2026-W48``."""
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


def window_end(now: datetime) -> datetime:
    start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=7)


def has_room(budget: Mapping[str, Any], klass: Klass, channel: str, limits: Limits) -> bool | None:
    """True: room on ``channel``; False: that channel is full; None: the whole budget is spent."""
    if klass == "critical":
        return True
    if int(budget.get("total", 0)) >= limits.weekly:
        return None
    if klass == "marketing":
        if int(budget.get("marketing", 0)) >= limits.marketing_weekly:
            return None
        if int(budget.get(f"mkt_{channel}", 0)) >= limits.marketing_per_channel_weekly:
            return False
    return True


def pick_channel(
    budget: Mapping[str, Any], klass: Klass, channels: list[str], limits: Limits
) -> tuple[str | None, str | None]:
    """(channel, None) for the first channel with room, or (None, "capped")."""
    for channel in channels:
        room = has_room(budget, klass, channel, limits)
        if room is None:
            return None, "capped"
        if room:
            return channel, None
    return None, "capped"


#: (update expression, condition, names, values) of one budget charge
BudgetUpdate = tuple[str, str | None, dict[str, str], dict[str, Any]]


def budget_update(klass: Klass, channel: str, limits: Limits) -> BudgetUpdate:
    """(update expression, condition, names, values) charging one message to the budget atomically."""
    names = {"#total": "total", "#ch": f"ch_{channel}"}
    values: dict[str, Any] = {":one": 1}
    if klass == "critical":
        names = {"#crit": "critical", "#ch": f"ch_{channel}"}
        return "ADD #crit :one, #ch :one", None, names, values
    adds = ["#total :one", "#ch :one"]
    values[":cap"] = limits.weekly
    conditions = ["(attribute_not_exists(#total) OR #total < :cap)"]
    if klass == "marketing":
        names.update({"#mkt": "marketing", "#mch": f"mkt_{channel}"})
        values.update({":mcap": limits.marketing_weekly, ":chcap": limits.marketing_per_channel_weekly})
        adds += ["#mkt :one", "#mch :one"]
        conditions += [
            "(attribute_not_exists(#mkt) OR #mkt < :mcap)",
            "(attribute_not_exists(#mch) OR #mch < :chcap)",
        ]
    return "ADD " + ", ".join(adds), " AND ".join(conditions), names, values
