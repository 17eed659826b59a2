"""Use cases of the fan-out: a stream record -> messages queued, deferred or suppressed (recorded).

``fan_out`` is called once per stream record. Every (intent, customer) pair becomes exactly one
message item whose id is derived from intent + customer + source item key + version, so a replay
of the record (stream retries, bisected batches) finds the message already there and produces
no second message. The message is queued on its channel's SQS queue only after the transaction
that created it (and charged the budget) succeeded; a replay of a message still ``queued`` sends it
to the queue again, which is harmless because senders claim a message before sending it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty import queue
from loyalty.errors import TransientError
from loyalty.notify import policy
from loyalty.notify.catalogue import REPLY_WINDOW, RULES, Klass, Trigger, match, topic_of
from loyalty.notify.message import Message
from loyalty.notify.store import (
    BudgetRace,
    Duplicate,
    NotifyStore,
    due_key,
)
from loyalty.observability import logger
from loyalty.settings import Settings, get_settings
from loyalty.store.table import Item, TransactionCancelled

_NS = uuid.UUID("3d0f5f55-52c6-4c3e-8d0e-6f7c1b9a4e21")
BUDGET_ATTEMPTS = 8
#: profile statuses that can receive messages (a merge in progress keeps the customer reachable;
#: merged ones are followed to their survivor, erasing / erased ones are not contacted)
REACHABLE_STATUSES = frozenset({"active", "merging"})


@dataclass(frozen=True)
class Outcome:
    message_id: str
    customer_id: str
    intent: str
    status: str  # queued | deferred | suppressed
    reason: str | None = None
    channel: str | None = None


def message_id_for(intent: str, customer_id: str, source_pk: str, source_sk: str, version: str) -> str:
    return str(uuid.uuid5(_NS, f"{intent}|{customer_id}|{source_pk}|{source_sk}|{version}"))


def limits_of(settings: Settings) -> policy.Limits:
    return policy.Limits(
        weekly=settings.notify_weekly_cap,
        marketing_weekly=settings.notify_marketing_weekly_cap,
        marketing_per_channel_weekly=settings.notify_marketing_channel_weekly_cap,
        quiet_start=settings.quiet_hours_start,
        quiet_end=settings.quiet_hours_end,
    )


def queue_url(settings: Settings, channel: str) -> str:
    url: str = getattr(settings, f"notify_{channel}_queue_url")
    if not url:
        raise TransientError(f"no queue configured for channel {channel}")
    return url


def enqueue(message: Item) -> None:
    """Hand a queued message to its channel's sender (the body only names it)."""
    body = json.dumps({"customer_id": message["customer_id"], "message_id": message["message_id"]})
    url = queue_url(get_settings(), str(message["channel"]))
    queue.send(url, queue.Envelope(body, {"intent": str(message["intent"])}))


class Fanout:
    def __init__(self, store: NotifyStore | None = None, settings: Settings | None = None) -> None:
        self.store = store or NotifyStore()
        self.settings = settings or get_settings()
        self.limits = limits_of(self.settings)

    def fan_out(self, new: Item | None, old: Item | None, now: datetime | None = None) -> list[Outcome]:
        """Every message one stream record produces (already deduplicated)."""
        now = now or datetime.now(UTC)
        outcomes = []
        for trigger in match(new, old):
            if trigger.rule.audience == "sku_subscribers":
                customers = self.store.subscribers(
                    str(trigger.data.get("sku")), str(trigger.data.get("location_id"))
                )
            else:
                customers = [trigger.customer_id] if trigger.customer_id else []
            for customer_id in customers:
                outcome = self.notify(trigger, customer_id, now)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def notify(self, trigger: Trigger, customer_id: str, now: datetime) -> Outcome | None:
        """One intent for one customer: suppressed, deferred or queued (None: a reminder too late)."""
        rule = trigger.rule
        if trigger.due is not None and rule.due_at is not None and trigger.due <= now:
            return None
        window = policy.budget_window(now)
        recipient, budget = self.store.recipient(customer_id, window)
        live_id = recipient.customer_id if recipient else customer_id
        message_id = message_id_for(
            rule.intent, customer_id, trigger.source_pk, trigger.source_sk, trigger.version
        )
        data = {**trigger.data, "first_name": recipient.first_name if recipient else None}
        message = Message(
            message_id=message_id,
            customer_id=live_id,
            intent=rule.intent,
            klass=rule.klass,
            created_at=now,
            locale=recipient.locale if recipient else None,
            data=data,
            source_pk=trigger.source_pk,
            source_sk=trigger.source_sk,
            topic=rule.topic,
        ).to_item()
        if recipient is None or recipient.status not in REACHABLE_STATUSES:
            return self._suppress(message, "no_profile" if recipient is None else "inactive", now)
        if rule.reply is not None:
            return self._reply(message, rule.reply, budget, window, now)
        channels, reason = policy.channel_order(recipient, _topics(message))
        if reason is not None:
            return self._suppress(message, reason, now)
        message["channels"] = channels
        message["addresses"] = {c: recipient.address(c) for c in channels}
        due, why = (trigger.due, None) if trigger.due is not None else self._when(rule.klass, recipient, now)
        if due is not None and due > now:
            message["reason"] = why
            return self._defer(message, due, now)
        return self._queue_new(message, budget, window, now, policy.limits_for(self.limits, recipient.prefs))

    def _when(
        self, klass: str, recipient: policy.Recipient, now: datetime, *, digest: bool = True
    ) -> tuple[datetime | None, str | None]:
        """(when a message may go, why it waits): the customer's quiet hours, then (marketing, unless
        ``digest`` is False) their digest frequency or the stage's digest window; (None, None): now."""
        if klass == "critical":
            return None, None
        quiet = policy.quiet_until(now, recipient.timezone, self.limits, recipient.prefs)
        if quiet is not None:
            return quiet, None
        if klass != "marketing" or not digest:
            return None, None
        due = policy.digest_until(now, recipient.timezone, recipient.prefs)
        if due is None and self.settings.notify_digest_minutes:
            due = digest_due(now, self.settings.notify_digest_minutes)
        return (due, "digest") if due is not None else (None, None)

    def _charged(
        self,
        customer_id: str,
        klass: Klass,
        channels: list[str],
        budget: Item,
        window: str,
        limits: policy.Limits,
        write: Callable[[str, policy.BudgetUpdate], None],
    ) -> str | None:
        """``write`` on the first channel with room, charging the budget in the same transaction; a
        lost race re-reads the budget and tries again. The channel written, or None: no room
        (``Duplicate`` from ``write`` propagates)."""
        for attempt in range(BUDGET_ATTEMPTS):
            if attempt:
                budget = self.store.budget(customer_id, window)
            channel, _ = policy.pick_channel(budget, klass, channels, limits)
            if channel is None:
                return None
            try:
                write(channel, policy.budget_update(klass, channel, limits))
            except BudgetRace:
                continue
            return channel
        raise TransientError(f"budget of {customer_id} too contended")

    def _reply(self, message: Item, channel: str, budget: Item, window: str, now: datetime) -> Outcome:
        """A reply to the customer's own message: on that channel, to the address they wrote from,
        consent notwithstanding (it confirms their opt-out); suppressed once the window has closed."""
        data = message["data"]
        address, inbound_at = data.get("address"), _parse(data.get("inbound_at"))
        if not address:
            return self._suppress(message, "no_contact", now)
        if inbound_at is None or now > inbound_at + REPLY_WINDOW:
            return self._suppress(message, "window_closed", now)
        message["channels"] = [channel]
        message["addresses"] = {channel: str(address)}
        return self._queue_new(message, budget, window, now, self.limits)

    # -- outcomes --------------------------------------------------------------------------------
    def _suppress(self, message: Item, reason: str, now: datetime) -> Outcome:
        message.update(status="suppressed", reason=reason)
        try:
            self.store.create(message)
        except Duplicate:
            return self._duplicate(message, now)
        return self._outcome(message)

    def _defer(self, message: Item, due: datetime, now: datetime) -> Outcome:
        message.update(
            status="deferred",
            reason=message.get("reason")
            or ("quiet_hours" if message["intent"] not in _REMINDERS else "reminder"),
            due=due.astimezone(UTC).isoformat(),
            gsi1pk=due_key(due.astimezone(UTC)),
            gsi1sk=f"{due.astimezone(UTC).isoformat()}#{message['message_id']}",
        )
        try:
            self.store.create(message)
        except Duplicate:
            return self._duplicate(message, now)
        return self._outcome(message)

    def _queue_new(
        self, message: Item, budget: Item, window: str, now: datetime, limits: policy.Limits
    ) -> Outcome:
        def write(channel: str, update: policy.BudgetUpdate) -> None:
            message.update(status="queued", channel=channel, reason=None)
            self.store.create(message, window, update)

        try:
            channel = self._charged(
                message["customer_id"], message["klass"], message["channels"], budget, window, limits, write
            )
        except Duplicate:
            return self._duplicate(message, now)
        if channel is None:
            return self._suppress(message, "capped", now)
        enqueue(message)
        return self._outcome(message)

    def _ready(self, message: Item, now: datetime) -> tuple[policy.Recipient, Item, list[str]] | Outcome:
        """Read a deferred message's recipient again at release: (recipient, budget, channels), or the
        message settled when it may no longer be sent (obsolete, inactive, no channel left)."""
        rule = RULES.get(str(message["intent"]))
        if rule is not None and rule.still is not None:
            source = self.store.source(str(message["source_pk"]), str(message["source_sk"]))
            attr, value = rule.still
            if source is None or source.get(attr) != value:
                return self._settle(message, now, status="suppressed", reason="obsolete")
        recipient, budget = self.store.recipient(str(message["customer_id"]), policy.budget_window(now))
        if recipient is None or recipient.status not in REACHABLE_STATUSES:
            return self._settle(message, now, status="suppressed", reason="inactive")
        # consent (a topic, a bounce) may have changed overnight
        channels, no_channel = policy.channel_order(recipient, _topics(message))
        if no_channel is not None:
            return self._settle(message, now, status="suppressed", reason=no_channel)
        return recipient, budget, channels

    def release(self, message: Item, now: datetime) -> Outcome:
        """A deferred message whose time has come: queued (charged to the budget), or suppressed."""
        if message.get("status") != "deferred":
            return self._outcome(message)
        ready = self._ready(message, now)
        if isinstance(ready, Outcome):
            return ready
        recipient, budget, channels = ready
        message = {**message, "channels": channels, "addresses": {c: recipient.address(c) for c in channels}}
        # quiet hours (or a digest the customer chose since) may have begun meanwhile
        later, why = self._when(message["klass"], recipient, now, digest=message.get("reason") != "digest")
        if later is not None:
            return self._redefer(message, later, now, why)
        queued: list[Item] = []

        def write(channel: str, update: policy.BudgetUpdate) -> None:
            changes: dict[str, Any] = {"status": "queued", "channel": channel, "channels": channels}
            changes |= {"addresses": message["addresses"], "reason": None, "updated_at": now.isoformat()}
            queued.append(
                self.store.transition(
                    message, "deferred", changes, window=window, update=update, remove=("gsi1pk", "gsi1sk")
                )
            )

        window = policy.budget_window(now)
        limits = policy.limits_for(self.limits, recipient.prefs)
        try:
            channel = self._charged(
                message["customer_id"], message["klass"], channels, budget, window, limits, write
            )
        except Duplicate:
            return self._outcome(message)
        if channel is None:
            return self._settle(message, now, status="suppressed", reason="capped")
        enqueue(queued[-1])
        return self._outcome(queued[-1])

    def release_digest(self, members: list[Item], now: datetime) -> list[Outcome]:
        """Deferred marketing messages of one customer, due together: ONE message, charged once."""
        members = [m for m in members if m.get("status") == "deferred"]
        if len(members) < 2:
            return [self.release(m, now) for m in members]
        window = policy.budget_window(now)
        recipient, budget = self.store.recipient(str(members[0]["customer_id"]), window)
        if recipient is None or recipient.status not in REACHABLE_STATUSES:
            return [self._settle(m, now, status="suppressed", reason="inactive") for m in members]
        channels, no_channel = policy.channel_order(recipient, {t for m in members for t in _topics(m)})
        if no_channel is not None:
            return [self._settle(m, now, status="suppressed", reason=no_channel) for m in members]
        quiet = policy.quiet_until(now, recipient.timezone, self.limits, recipient.prefs)
        if quiet is not None:
            return [self._redefer(m, quiet, now, "digest") for m in members]
        members = members[:DIGEST_MAX]
        digest = self._digest(members, recipient, channels, now)

        def write(channel: str, update: policy.BudgetUpdate) -> None:
            digest.update(status="queued", channel=channel)
            self.store.create_digest(digest, members, window, update)

        limits = policy.limits_for(self.limits, recipient.prefs)
        try:
            channel = self._charged(
                recipient.customer_id, "marketing", channels, budget, window, limits, write
            )
        except Duplicate:
            return [self._outcome(digest)]
        if channel is None:
            return [self._settle(m, now, status="suppressed", reason="capped") for m in members]
        enqueue(digest)
        return [self._outcome(digest)]

    @staticmethod
    def _digest(members: list[Item], recipient: policy.Recipient, channels: list[str], now: datetime) -> Item:
        """ONE marketing message listing ``members`` (its id derives from theirs: a replay finds it)."""
        ids = sorted(str(m["message_id"]) for m in members)
        return Message(
            message_id=str(uuid.uuid5(_NS, "digest|" + "|".join(ids))),
            customer_id=recipient.customer_id,
            intent="digest",
            klass="marketing",
            created_at=now,
            locale=recipient.locale,
            data={
                "first_name": recipient.first_name,
                "items": [{"intent": m["intent"], "data": m.get("data") or {}} for m in members],
            },
            members=ids,
            channels=channels,
            addresses={c: recipient.address(c) for c in channels},
        ).to_item()

    def _redefer(self, message: Item, due: datetime, now: datetime, reason: str | None) -> Outcome:
        due = due.astimezone(UTC)
        try:
            moved = self.store.transition(
                message,
                "deferred",
                {
                    "due": due.isoformat(),
                    "reason": reason or ("digest" if message.get("reason") == "digest" else "quiet_hours"),
                    "gsi1pk": due_key(due),
                    "gsi1sk": f"{due.isoformat()}#{message['message_id']}",
                    "updated_at": now.isoformat(),
                },
            )
        except Duplicate:
            return self._outcome(message)
        return self._outcome(moved)

    def _settle(self, message: Item, now: datetime, *, status: str, reason: str) -> Outcome:
        try:
            done = self.store.transition(
                message,
                "deferred",
                {"status": status, "reason": reason, "updated_at": now.isoformat()},
                remove=("gsi1pk", "gsi1sk"),
            )
        except Duplicate:
            return self._outcome(message)
        return self._outcome(done)

    def _duplicate(self, message: Item, now: datetime) -> Outcome:
        current = self.store.message(message["customer_id"], message["message_id"]) or message
        if current.get("status") == "queued" and current.get("channel"):
            enqueue(current)  # the first delivery may have failed between the write and the send
        self.store.record_duplicate(current, now)
        return Outcome(
            str(current["message_id"]),
            str(current["customer_id"]),
            str(current["intent"]),
            "suppressed",
            "duplicate",
            current.get("channel"),
        )

    @staticmethod
    def _outcome(message: Item) -> Outcome:
        return Outcome(
            str(message["message_id"]),
            str(message["customer_id"]),
            str(message["intent"]),
            str(message["status"]),
            message.get("reason"),
            message.get("channel"),
        )


_REMINDERS = frozenset(rule.intent for rule in RULES.values() if rule.due_at is not None)


def _parse(value: Any) -> datetime | None:
    """An ISO time from an item (naive = UTC); None when absent or unreadable."""
    try:
        moment = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _topics(message: Item) -> tuple[str, ...]:
    """The marketing topic of a message (from its intent; an older message may not store it)."""
    topic = message.get("topic") or topic_of(str(message.get("intent", "")))
    return (str(topic),) if topic else ()


#: members folded into one digest at most (a transaction holds 100 actions: 3 + 2 per member)
DIGEST_MAX = 40


def digest_due(now: datetime, minutes: int) -> datetime:
    """The end of the digest window ``now`` falls in (windows of ``minutes``, aligned to UTC midnight)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((now - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=(elapsed // minutes + 1) * minutes)


def release_due(now: datetime | None = None, lookback_hours: int | None = None) -> list[Outcome]:
    """Release every deferred message due by ``now`` (scanning back ``lookback_hours`` hour keys)."""
    now = now or datetime.now(UTC)
    fanout = Fanout()
    hours = lookback_hours if lookback_hours is not None else fanout.settings.notify_due_lookback_hours
    due: list[Item] = []
    for back in range(hours, -1, -1):
        due.extend(fanout.store.due(due_key(now - timedelta(hours=back)), now))
    digests: dict[str, list[Item]] = {}
    outcomes = []
    for item in due:
        if item.get("klass") == "marketing" and (
            fanout.settings.notify_digest_minutes or item.get("reason") == "digest"
        ):
            digests.setdefault(str(item["customer_id"]), []).append(item)
        else:
            outcomes.append(fanout.release(item, now))
    for customer_id, members in digests.items():
        try:
            outcomes.extend(fanout.release_digest(members, now))
        except TransactionCancelled as err:  # a member was released meanwhile: the next run retries
            logger.warning("digest skipped", extra={"customer_id": customer_id, "reasons": err.reasons})
    return outcomes


def describe(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts per status (for logs and metrics)."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts
