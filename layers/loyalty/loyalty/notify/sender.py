"""Use case of the channel senders: send one queued message once, retry, fall back, or give up.

A sender claims the message (queued -> sending, with a lease) before calling the provider and
marks it sent afterwards, so a redelivered SQS message or a replayed fan-out never sends twice.
A provider failure releases the claim and fails the SQS record (retried with backoff); after
``NOTIFY_FALLBACK_AFTER_ATTEMPTS`` attempts on a channel (or at once for a permanent failure) the
message moves to the customer's next consented channel; on the last channel it ends in the DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty.errors import TransientError
from loyalty.notify.adapters import Provider, ProviderError, provider_for
from loyalty.notify.catalogue import reply_channel
from loyalty.notify.fanout import enqueue
from loyalty.notify.mail import compose
from loyalty.notify.store import NotClaimable, NotifyStore
from loyalty.notify.template_store import TemplateStore
from loyalty.notify.templates import TEMPLATES, Template, language_of, render
from loyalty.settings import get_settings
from loyalty.store.table import Item


class SendFailed(Exception):
    """The provider failed; the queue must deliver this message again later (then the DLQ)."""


@dataclass(frozen=True)
class SendResult:
    status: str  # sent | already_done | superseded | fallback | withdrawn | gone
    channel: str
    next_channel: str | None = None


def _untried(message: Item) -> list[str]:
    tried = {*message.get("failed_channels", []), message["channel"]}
    return [c for c in message.get("channels", []) if c not in tried]


def next_channel(message: Item) -> str | None:
    return next(iter(_untried(message)), None)


def _granted(consents: dict[str, Any] | None, channel: str) -> bool:
    entry = (consents or {}).get(channel)
    return isinstance(entry, dict) and entry.get("granted") is True


def send(
    customer_id: str,
    message_id: str,
    channel: str,
    *,
    provider: Provider | None = None,
    store: NotifyStore | None = None,
    now: datetime | None = None,
) -> SendResult:
    """Send ``message_id`` on ``channel`` (the channel this sender serves)."""
    settings = get_settings()
    store = store or NotifyStore()
    now = now or datetime.now(UTC)
    try:
        message = store.claim(
            customer_id, message_id, channel, now, timedelta(seconds=settings.notify_send_lease_s)
        )
    except NotClaimable as err:
        current = err.item
        if current is None:  # erased with its customer (right to erasure) or expired: nothing to send
            return SendResult("gone", channel)
        if current.get("status") == "sending" and current.get("channel") == channel:
            raise TransientError(f"message {message_id} is being sent by another worker") from None
        status = "superseded" if current.get("channel") != channel else "already_done"
        return SendResult(status, channel)
    consents = store.consents(customer_id)
    reply = reply_channel(str(message["intent"])) == channel  # confirms an opt-out: consent cannot apply
    if not reply and not _granted(consents, channel):  # withdrawn while the message waited: an opt-out wins
        following = next((c for c in _untried(message) if _granted(consents, c)), None)
        if following is None:
            store.withdraw(message, now, "no_consent")
            return SendResult("withdrawn", channel)
        enqueue(store.fall_back(message, now, following, f"no consent for {channel} any more"))
        return SendResult("fallback", channel, following)
    intent = str(message["intent"])
    editable = intent in TEMPLATES
    template, version = published(intent, channel, message.get("locale")) if editable else (None, 0)
    content = render(intent, channel, message.get("locale"), message.get("data") or {}, template)
    address = str((message.get("addresses") or {}).get(channel, ""))
    if channel == "email":
        content = compose(content, message, address)  # unsubscribe headers and links, raw MIME
    try:
        delivery = (provider or provider_for(channel)).send(channel, address, content, message)
    except ProviderError as err:
        return _failed(store, message, now, err, settings.notify_fallback_after)
    store.complete(message, now, delivery.provider_id, delivery.outbox, template_version=version)
    return SendResult("sent", channel)


def _failed(
    store: NotifyStore, message: Item, now: datetime, err: ProviderError, fallback_after: int
) -> SendResult:
    channel = str(message["channel"])
    following = next_channel(message)
    if following is not None and (err.permanent or int(message.get("attempts", 1)) >= fallback_after):
        moved = store.fall_back(message, now, following, str(err))
        enqueue(moved)
        return SendResult("fallback", channel, following)
    store.release(message, now, str(err))
    raise SendFailed(f"{channel} provider failed for {message['message_id']}: {err}")


def published(intent: str, channel: str, locale: str | None) -> tuple[Template | None, int]:
    """The template marketing published for this message, with its version (0: the built-in)."""
    return TemplateStore().current(intent, channel, language_of(locale))


def backoff(channel: str, receipt_handle: str, receive_count: int) -> None:
    """Delay the next delivery exponentially (30 s, 60 s, 120 s ... at most 15 min).

    A failure is not swallowed (it hid a missing ``sqs:ChangeMessageVisibility`` permission): it
    propagates, chained to the send failure, and the message fails and is retried as it would be.
    """
    from loyalty import queue
    from loyalty.notify.fanout import queue_url

    delay = min(30 * 2 ** max(receive_count - 1, 0), 900)
    queue.delay(queue_url(get_settings(), channel), receipt_handle, delay)
