"""The notification message as a typed entity that owns its keys (``to_item`` / ``from_item``).

One message per (intent, customer, source change): ``CUST#<customer_id>`` / ``NOTIF#MSG#<id>``,
with its timeline key ``tl_sk`` fixed at creation. The state machine's later attributes
(``status``, ``channel``, ``lease_until`` ...) are written by ``NotifyStore`` with conditional
updates; ``from_item`` reads them all back, keeping any attribute it does not model in ``extra``
so that a round trip never loses data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from loyalty.customers import customer_pk
from loyalty.notify.catalogue import Klass
from loyalty.notify.store import MESSAGE_ENTITY, log_sk, message_sk, ttl
from loyalty.store.table import Item

_KEYS = ("pk", "sk", "entity", "tl_sk", "created_at", "updated_at", "expires_at")


@dataclass
class Message:
    message_id: str
    customer_id: str
    intent: str
    klass: Klass
    created_at: datetime
    locale: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    source_pk: str | None = None
    source_sk: str | None = None
    topic: str | None = None
    members: list[str] | None = None  # a digest: the messages folded into it
    status: str | None = None
    reason: str | None = None
    channel: str | None = None
    channels: list[str] | None = None
    addresses: dict[str, str | None] | None = None
    attempts: int = 0
    updated_at: datetime | None = None
    expires_at: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # attributes not modelled here (kept as they are)

    @property
    def pk(self) -> str:
        return customer_pk(self.customer_id)

    @property
    def sk(self) -> str:
        return message_sk(self.message_id)

    def to_item(self) -> Item:
        item: Item = {
            "pk": self.pk,
            "sk": self.sk,
            "entity": MESSAGE_ENTITY,
            "message_id": self.message_id,
            "customer_id": self.customer_id,
            "intent": self.intent,
            "klass": self.klass,
            "locale": self.locale,
            "data": {k: v for k, v in self.data.items() if v is not None},
            "created_at": self.created_at.isoformat(),
            "updated_at": (self.updated_at or self.created_at).isoformat(),
            "tl_sk": log_sk(self.created_at, self.message_id),
            "attempts": self.attempts,
            "expires_at": self.expires_at if self.expires_at is not None else ttl(self.created_at),
        }
        optional = {
            "source_pk": self.source_pk,
            "source_sk": self.source_sk,
            "topic": self.topic,
            "members": self.members,
            "status": self.status,
            "reason": self.reason,
            "channel": self.channel,
            "channels": self.channels,
            "addresses": self.addresses,
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        return {**self.extra, **item}

    @classmethod
    def from_item(cls, item: Item) -> Message:
        modelled = {f.name for f in fields(cls)} - {"extra", "created_at", "updated_at"}
        values = {k: v for k, v in item.items() if k in modelled}
        if "attempts" in values:
            values["attempts"] = int(values["attempts"])
        if values.get("expires_at") is not None:
            values["expires_at"] = int(values["expires_at"])
        extra = {k: v for k, v in item.items() if k not in modelled and k not in _KEYS}
        return cls(
            created_at=datetime.fromisoformat(str(item["created_at"])),
            updated_at=datetime.fromisoformat(str(item["updated_at"])) if item.get("updated_at") else None,
            extra=extra,
            **values,
        )
