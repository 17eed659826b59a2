"""Notification items in the single table (see docs/data-model.md, "Notifications").

- ``CUST#<id>`` / ``NOTIF#MSG#<message_id>`` (entity ``notification``): one message, its state
  machine (deferred -> queued -> sending -> sent, or suppressed) and everything a sender needs.
  Its conditional put is the dedupe: the id is derived from intent + source item key + version.
  While deferred it carries ``gsi1pk = NOTIFDUE#<yyyy-mm-ddThh>`` (UTC hour it is due).
- ``CUST#<id>`` / ``NOTIF#BUDGET#<yyyy-Www>`` (``notification_budget``): the weekly counters.
- ``CUST#<id>`` / ``TL#<iso>#notif-<message_id>`` (``notification_log``): the message on the
  customer's timeline with its latest status and reason; a replay adds a ``...#duplicate`` entry.
- ``CUST#<id>`` / ``NOTIF#OUT#<iso>#<message_id>`` (``notification_outbox``): what the outbox
  adapter "sent" (DeliveryMode=outbox, locally and in tests).
- ``CUST#<id>`` / ``NOTIF#PREFS`` (``notification_preferences``): the customer's quiet hours and
  frequency (``PreferencesItem``); the latest statement wins, read with the profile.
- ``ADDR#<channel>#<normalised address>`` / ``UNDELIVERABLE`` (``undeliverable_address``): a hard
  bounce of that address on that channel; keyed by the address, not the customer, so it holds
  whoever owns the address after merges (see ``loyalty.notify.feedback``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty import customers
from loyalty.customers import PROFILE_SK, customer_pk, profile_key, redirect_key
from loyalty.errors import Conflict
from loyalty.models.identifiers import InvalidIdentifier, normalize_email, normalize_phone
from loyalty.notify.policy import CONTACT_TYPE, Preferences, Recipient
from loyalty.store.table import Item, Table, TransactionCancelled, tx_put, tx_put_new, tx_update

MESSAGE_ENTITY = "notification"
BUDGET_ENTITY = "notification_budget"
LOG_ENTITY = "notification_log"
OUTBOX_ENTITY = "notification_outbox"
UNDELIVERABLE_ENTITY = "undeliverable_address"
UNDELIVERABLE_SK = "UNDELIVERABLE"
PREFS_ENTITY = "notification_preferences"
PREFS_SK = "NOTIF#PREFS"
RETENTION = timedelta(days=400)


class Duplicate(Exception):
    """The message already exists: this change was already turned into a message."""


class BudgetRace(Exception):
    """The budget changed between reading it and charging it (another message took the room)."""


class NotClaimable(Exception):
    """The message is not in a state this sender may send it from; ``item`` is its current state."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("message not claimable")
        self.item = item


def message_sk(message_id: str) -> str:
    return f"NOTIF#MSG#{message_id}"


def budget_sk(window: str) -> str:
    return f"NOTIF#BUDGET#{window}"


def log_sk(at: datetime, message_id: str) -> str:
    return f"TL#{at.isoformat()}#notif-{message_id}"


def outbox_sk(at: datetime, message_id: str) -> str:
    return f"NOTIF#OUT#{at.isoformat()}#{message_id}"


def normalised_address(channel: str, address: str) -> str:
    """The address as identity keeps it (email lowercased and canonical, phone E.164)."""
    try:
        if channel == "email":
            return normalize_email(address)
        if channel in {"sms", "whatsapp"}:
            return normalize_phone(address if address.startswith("+") else f"+{address}")
    except InvalidIdentifier:
        pass
    return address.strip().lower()


def address_key(channel: str, address: str) -> tuple[str, str]:
    return f"ADDR#{channel}#{normalised_address(channel, address)}", UNDELIVERABLE_SK


def due_key(due: datetime) -> str:
    """GSI1 partition of messages due in the UTC hour of ``due``."""
    return f"NOTIFDUE#{due.strftime('%Y-%m-%dT%H')}"


def ttl(at: datetime, keep: timedelta = RETENTION) -> int:
    return int((at + keep).timestamp())


def log_item(message: Mapping[str, Any], now: datetime) -> Item:
    """The timeline entry of a message (same status and reason as the message)."""
    return {
        "pk": message["pk"],
        "sk": message["tl_sk"],
        "entity": LOG_ENTITY,
        "customer_id": message["customer_id"],
        "message_id": message["message_id"],
        "intent": message["intent"],
        "klass": message["klass"],
        "status": message["status"],
        "reason": message.get("reason"),
        "channel": message.get("channel"),
        "due": message.get("due"),
        "template_version": message.get("template_version"),
        "at": message["created_at"],
        "updated_at": now.isoformat(),
        "expires_at": message.get("expires_at"),
    }


def _contacts(contacts: list[Item]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in sorted(contacts, key=lambda i: str(i.get("linked_at") or i.get("created_at") or "")):
        kind = item.get("type")
        value = item.get("value")
        if not kind or not value:
            _, kind, value = [*str(item["sk"]).split("#", 2), "", ""][:3]
        if kind == "device_id" and item.get("push_token"):
            value = item["push_token"]  # the app's registered push token, when identity keeps it
        if kind and value:
            found[str(kind)] = str(value)
    return found


@dataclass(frozen=True)
class PreferencesItem:
    """A customer's quiet hours and frequency as stated at ``updated_at`` (latest statement wins)."""

    customer_id: str
    prefs: Preferences
    updated_at: str  # ISO, UTC
    source: str = ""

    def to_item(self) -> Item:
        item: Item = {
            "pk": customer_pk(self.customer_id),
            "sk": PREFS_SK,
            "entity": PREFS_ENTITY,
            "customer_id": self.customer_id,
            "frequency": self.prefs.frequency,
            "updated_at": self.updated_at,
            "source": self.source,
        }
        optional = {
            "quiet_start": self.prefs.quiet_start,
            "quiet_end": self.prefs.quiet_end,
            "marketing_weekly_max": self.prefs.marketing_weekly_max,
        }
        return item | {k: v for k, v in optional.items() if v is not None}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> PreferencesItem:
        cap = item.get("marketing_weekly_max")
        return cls(
            customer_id=str(item["customer_id"]),
            prefs=Preferences(
                quiet_start=item.get("quiet_start"),
                quiet_end=item.get("quiet_end"),
                frequency=str(item.get("frequency") or "as_it_happens"),
                marketing_weekly_max=int(cap) if cap is not None else None,
            ),
            updated_at=str(item.get("updated_at") or ""),
            source=str(item.get("source") or ""),
        )


def _recipient(
    customer_id: str,
    profile: Item,
    found: dict[str, str],
    undeliverable: frozenset[str],
    prefs: Preferences,
) -> Recipient:
    return Recipient(
        customer_id=customer_id,
        status=str(profile.get("status") or "active"),
        locale=profile.get("locale"),
        timezone=profile.get("timezone"),
        preferred_channel=profile.get("preferred_channel"),
        consents=profile.get("consents") or {},
        contacts=found,
        first_name=profile.get("first_name"),
        undeliverable=undeliverable,
        prefs=prefs,
    )


def _classify(err: TransactionCancelled, message: Mapping[str, Any]) -> None:
    """Raise ``Duplicate`` (the message's own condition failed) or ``BudgetRace`` (the budget's, the
    third action); anything else is left to the caller to re-raise as it is."""
    reasons = err.reasons or []
    if reasons and reasons[0] == "ConditionalCheckFailed":
        raise Duplicate(message["message_id"]) from err
    if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
        raise BudgetRace(message["message_id"]) from err


class NotifyStore:
    def __init__(self, table: Table | None = None) -> None:
        self.table = table or Table()

    # -- reads -----------------------------------------------------------------------------------
    def recipient(self, customer_id: str, window: str) -> tuple[Recipient | None, Item]:
        """(the live customer, or None without a profile; their budget item) REDIRECTs followed."""

        def read(cid: str) -> tuple[str | None, dict[str, Item]]:
            keys = [
                profile_key(cid),
                redirect_key(cid),
                (customer_pk(cid), budget_sk(window)),
                (customer_pk(cid), PREFS_SK),
            ]
            items = {i["sk"]: i for i in self.table.batch_get(keys)}
            return customers.survivor_named(items.values()), items

        customer_id, items = customers.follow(customer_id, read)
        profile = items.get(PROFILE_SK)
        if profile is None:
            return None, {}
        found = _contacts(list(self.table.query_all(customer_pk(customer_id), sk_prefix="ID#")))
        prefs = self.latest_preferences(items.get(PREFS_SK), profile.get("absorbed_ids") or [])
        recipient = _recipient(customer_id, profile, found, self.undeliverable(found), prefs)
        return recipient, items.get(budget_sk(window), {})

    def consents(self, customer_id: str) -> dict[str, Any] | None:
        """The live customer's consents (REDIRECTs of absorbed customers followed); None: no profile,
        or one being erased."""

        def read(cid: str) -> tuple[str | None, Item | None]:
            profile = self.table.get(*profile_key(cid))
            if profile is None or profile.get("status") != "merged":
                return None, profile
            return customers.survivor_named([self.table.get(*redirect_key(cid))]), profile

        profile = customers.follow(customer_id, read)[1]
        if profile is None or profile.get("status") in {"erasing", "erased"}:
            return None  # nobody to contact any more
        return dict(profile.get("consents") or {})

    def undeliverable(self, contacts: Mapping[str, str]) -> frozenset[str]:
        """The channels whose address (of ``contacts``: identifier type -> value) hard-bounced."""
        keys = {
            channel: address_key(channel, contacts[kind])
            for channel, kind in CONTACT_TYPE.items()
            if contacts.get(kind) and channel != "push"
        }
        if not keys:
            return frozenset()
        marked = {(i["pk"], i["sk"]) for i in self.table.batch_get(list(keys.values()))}
        return frozenset(c for c, key in keys.items() if key in marked)

    def own_preferences(self, customer_id: str) -> Item | None:
        return self.table.get(customer_pk(customer_id), PREFS_SK)

    def latest_preferences(self, own: Item | None, absorbed_ids: list[str]) -> Preferences:
        """The latest statement of quiet hours / frequency among a customer and those it absorbed
        (a merge keeps what the person said last under any of their ids)."""
        found = [own] if own else []
        if absorbed_ids:
            found += self.table.batch_get([(customer_pk(cid), PREFS_SK) for cid in absorbed_ids])
        if not found:
            return Preferences()
        return PreferencesItem.from_item(max(found, key=lambda i: str(i.get("updated_at") or ""))).prefs

    def save_preferences(self, record: PreferencesItem) -> bool:
        """Store a statement unless a later one is stored already (False: older or the same, a replay)."""
        try:
            self.table.put(
                record.to_item(),
                condition="attribute_not_exists(pk) OR updated_at < :at",
                values={":at": record.updated_at},
            )
        except Conflict:
            return False
        return True

    def clear_undeliverable(self, channel: str, address: str, *, before: datetime) -> bool:
        """Lift the hard-bounce mark of ``address`` if it is older than ``before`` (a later delivery or
        a new confirmation proves the address works); False when there was no such mark."""
        pk, sk = address_key(channel, address)
        try:
            self.table.delete(
                pk,
                sk,
                condition="attribute_exists(pk) AND #at < :before",
                names={"#at": "at"},
                values={":before": before.astimezone(UTC).isoformat()},
            )
        except Conflict:
            return False
        return True

    def budget(self, customer_id: str, window: str) -> Item:
        return self.table.get(customer_pk(customer_id), budget_sk(window)) or {}

    def message(self, customer_id: str, message_id: str) -> Item | None:
        return self.table.get(customer_pk(customer_id), message_sk(message_id))

    def subscribers(self, sku: str, location_id: str) -> list[str]:
        """Customers subscribed to ``sku`` at ``location_id`` (``SKU#<sku>`` / ``ALERT#<loc>#``)."""
        return [
            str(i["customer_id"])
            for i in self.table.query_all(f"SKU#{sku}", sk_prefix=f"ALERT#{location_id}#")
            if i.get("entity") == "stock_alert" and i.get("customer_id")
        ]

    def due(self, hour_key: str, until: datetime) -> list[Item]:
        """Deferred messages in one due-hour partition whose due time is <= ``until``."""
        upper = f"{until.astimezone(UTC).isoformat()}~"  # "~" sorts after the "#<message_id>" suffix
        return list(self.table.query_all(hour_key, index="gsi1", sk_between=("0", upper)))

    def source(self, pk: str, sk: str) -> Item | None:
        return self.table.get(pk, sk)

    # -- fan-out writes --------------------------------------------------------------------------
    def _budget_action(
        self,
        message: Mapping[str, Any],
        window: str,
        update: tuple[str, str | None, dict[str, str], dict[str, Any]],
    ) -> dict[str, Any]:
        expression, condition, names, values = update
        now = datetime.fromisoformat(str(message["updated_at"]))
        return tx_update(
            message["pk"],
            budget_sk(window),
            f"{expression} SET entity = :be, customer_id = :bc, expires_at = :bx",
            condition,
            names,
            {
                **values,
                ":be": BUDGET_ENTITY,
                ":bc": message["customer_id"],
                ":bx": ttl(now, timedelta(days=15)),
            },
        )

    def create(
        self,
        message: Item,
        window: str | None = None,
        update: tuple[str, str | None, dict[str, str], dict[str, Any]] | None = None,
    ) -> None:
        """Put a new message (with its timeline entry, and its budget charge when queued).

        ``Duplicate``: the message exists (a replay); ``BudgetRace``: the budget's condition failed.
        """
        now = datetime.fromisoformat(str(message["updated_at"]))
        actions = [tx_put_new(message), tx_put(log_item(message, now))]
        if update is not None and window is not None:
            actions.append(self._budget_action(message, window, update))
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            _classify(err, message)
            raise

    def transition(
        self,
        message: Item,
        expected: str,
        changes: Mapping[str, Any],
        *,
        window: str | None = None,
        update: tuple[str, str | None, dict[str, str], dict[str, Any]] | None = None,
        remove: tuple[str, ...] = (),
    ) -> Item:
        """Move an existing message from status ``expected`` (e.g. deferred -> queued), updating its
        timeline entry and charging the budget in the same transaction; returns the new state.

        ``Duplicate``: it was no longer in ``expected`` (someone else moved it); ``BudgetRace``.
        """
        new = {**message, **changes}
        for attr in remove:
            new.pop(attr, None)
        sets = {k: v for k, v in changes.items() if k not in {"pk", "sk"}}
        names = {f"#a{i}": k for i, k in enumerate(sets)} | {"#st": "status"}
        values = {f":v{i}": v for i, v in enumerate(sets.values())} | {":expected": expected}
        expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(sets)))
        if remove:
            names |= {f"#r{i}": k for i, k in enumerate(remove)}
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        now = datetime.fromisoformat(str(new["updated_at"]))
        actions = [
            tx_update(message["pk"], message["sk"], expression, "#st = :expected", names, values),
            tx_put(log_item(new, now)),
        ]
        if update is not None and window is not None:
            actions.append(self._budget_action(new, window, update))
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            _classify(err, message)
            raise
        return new

    def create_digest(
        self,
        digest: Item,
        members: list[Item],
        window: str,
        update: tuple[str, str | None, dict[str, str], dict[str, Any]],
    ) -> None:
        """Put the digest (charged once) and fold its deferred members into it, all or nothing.

        ``Duplicate``: the digest exists; ``BudgetRace``; another ``TransactionCancelled``: a member
        was no longer deferred (released meanwhile): nothing was written.
        """
        now = datetime.fromisoformat(str(digest["updated_at"]))
        actions = [
            tx_put_new(digest),
            tx_put(log_item(digest, now)),
            self._budget_action(digest, window, update),
        ]
        for member in members:
            folded = {
                **member,
                "status": "suppressed",
                "reason": "digested",
                "digest_id": digest["message_id"],
            }
            actions.append(
                tx_update(
                    member["pk"],
                    member["sk"],
                    "SET #st = :s, reason = :r, digest_id = :d, updated_at = :now REMOVE gsi1pk, gsi1sk",
                    "#st = :deferred",
                    {"#st": "status"},
                    {
                        ":s": "suppressed",
                        ":r": "digested",
                        ":d": digest["message_id"],
                        ":now": now.isoformat(),
                        ":deferred": "deferred",
                    },
                )
            )
            actions.append(tx_put(log_item(folded, now)))
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            _classify(err, digest)
            raise

    def record_duplicate(self, message: Mapping[str, Any], now: datetime) -> None:
        """A replay that produced no message: its own timeline entry, reason ``duplicate``."""
        entry = log_item({**message, "status": "suppressed", "reason": "duplicate"}, now)
        entry["sk"] = f"TL#{now.isoformat()}#notif-{message['message_id']}#duplicate"
        entry["at"] = now.isoformat()
        entry["expires_at"] = ttl(now)
        self.table.put(entry)

    # -- sender writes ---------------------------------------------------------------------------
    def claim(self, customer_id: str, message_id: str, channel: str, now: datetime, lease: timedelta) -> Item:
        """Take the message for sending on ``channel`` (queued, or sending with a lapsed lease)."""
        pk, sk = customer_pk(customer_id), message_sk(message_id)
        try:
            return self.table.update(
                pk,
                sk,
                "SET #st = :sending, lease_until = :until, updated_at = :now ADD attempts :one",
                condition="#ch = :ch AND (#st = :queued OR (#st = :sending AND lease_until < :now))",
                names={"#st": "status", "#ch": "channel"},
                values={
                    ":sending": "sending",
                    ":queued": "queued",
                    ":ch": channel,
                    ":until": (now + lease).isoformat(),
                    ":now": now.isoformat(),
                    ":one": 1,
                },
            )
        except Conflict:
            raise NotClaimable(self.table.get(pk, sk)) from None

    def complete(
        self,
        message: Item,
        now: datetime,
        provider_id: str,
        outbox: Item | None,
        *,
        template_version: int = 0,
    ) -> Item:
        """sending -> sent, with the timeline entry (and the outbox item) in one transaction.

        ``template_version``: the version of the text it was rendered from (0: the built-in one).
        """
        done = {**message, "status": "sent", "sent_at": now.isoformat(), "provider_id": provider_id}
        done["updated_at"] = now.isoformat()
        done["template_version"] = template_version
        actions = [
            tx_update(
                message["pk"],
                message["sk"],
                "SET #st = :sent, sent_at = :now, provider_id = :pid, updated_at = :now,"
                " template_version = :tv REMOVE lease_until",
                "#st = :sending AND #ch = :ch",
                {"#st": "status", "#ch": "channel"},
                {
                    ":sent": "sent",
                    ":sending": "sending",
                    ":now": now.isoformat(),
                    ":pid": provider_id,
                    ":ch": message["channel"],
                    ":tv": template_version,
                },
            ),
            tx_put(log_item(done, now)),
        ]
        if outbox is not None:
            actions.append(tx_put(outbox))
        try:
            self.table.transact(actions)
        except TransactionCancelled as err:
            raise NotClaimable(self.table.get(message["pk"], message["sk"])) from err
        return done

    def release(self, message: Item, now: datetime, error: str) -> None:
        """sending -> queued after a provider failure (the queue retries it later)."""
        self.table.update(
            message["pk"],
            message["sk"],
            "SET #st = :queued, last_error = :err, updated_at = :now REMOVE lease_until",
            condition="#st = :sending AND #ch = :ch",
            names={"#st": "status", "#ch": "channel"},
            values={
                ":queued": "queued",
                ":sending": "sending",
                ":err": error[:500],
                ":now": now.isoformat(),
                ":ch": message["channel"],
            },
            return_values="NONE",
        )

    def withdraw(self, message: Item, now: datetime, reason: str) -> Item:
        """sending -> suppressed (e.g. the customer withdrew consent while it waited in the queue)."""
        return self.transition(
            message,
            "sending",
            {"status": "suppressed", "reason": reason, "updated_at": now.isoformat()},
            remove=("lease_until",),
        )

    def fall_back(self, message: Item, now: datetime, channel: str, error: str) -> Item:
        """sending on one channel -> queued on the next one (attempts start again)."""
        return self.transition(
            message,
            "sending",
            {
                "channel": channel,
                "status": "queued",
                "attempts": 0,
                "failed_channels": [*message.get("failed_channels", []), message["channel"]],
                "last_error": error[:500],
                "updated_at": now.isoformat(),
            },
            remove=("lease_until",),
        )
