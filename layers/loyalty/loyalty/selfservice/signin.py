"""Who a signed-in customer is: the token's VERIFIED email / phone, through the identity graph.

API Gateway (locally the devstack front door) verified the token; this module only reads its
claims (``loyalty.auth.principal``). The customer is the owner of the verified identifiers in
the identity graph. When the graph does not know them all (or they belong to several customers),
the sign-in is a channel event like any other: a ``customer.registered`` event built from the
token is recorded in the event log and resolved synchronously by the one resolution code
(``loyalty.identity.resolve.Resolver``): unknown identifiers are attached to their customer, a
new customer is created when nobody owns any, customers owning different ones are merged (or
quarantined for review, like any channel event). Its event id is derived from the Cognito
``sub`` and the identifiers, so the same person's concurrent first calls resolve the SAME stored
event: one customer, one timeline entry. An unverified email or phone is never used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loyalty.auth.principal import Pool, Principal, principal_from_event
from loyalty.errors import Forbidden, Unauthorized
from loyalty.eventlog.store import EventLog, from_item
from loyalty.identity.resolve import Resolver
from loyalty.identity.store import ACTIVE, IdentityStore
from loyalty.models.events import Channel, ChannelEvent, EventType, ProfilePayload, event_id_for
from loyalty.models.identifiers import Identifier, IdentifierType, InvalidIdentifier
from loyalty.notify.policy import CONTACT_TYPE
from loyalty.notify.store import NotifyStore
from loyalty.observability import logger
from loyalty.store.table import Item

SIGNIN_CHANNEL = Channel.WEB


@dataclass(frozen=True)
class Me:
    """The signed-in customer: the live id, every id it absorbed, the identifiers it signed in with."""

    customer_id: str
    customer_ids: tuple[str, ...]
    identifiers: tuple[Identifier, ...]
    signed_up: bool = False  # this request linked the sign-in to the graph (first sign-in)

    def owns(self, customer_id: str | None) -> bool:
        return customer_id is not None and customer_id in self.customer_ids


def customer_principal(event: dict[str, Any], staff_issuer: str) -> Principal:
    """The verified customer calling; 401 for no claims, a staff token or a machine caller."""
    principal = principal_from_event(event, staff_issuer)
    if principal is None or principal.pool != Pool.CUSTOMER or not principal.subject:
        raise Unauthorized("sign in as a customer", code="unauthorized")
    return principal


def verified_identifiers(principal: Principal) -> list[Identifier]:
    """The token's email and phone, each only when the pool verified it (normalised)."""
    out: list[Identifier] = []
    claims = (
        (IdentifierType.EMAIL, principal.email, principal.email_verified),
        (IdentifierType.PHONE, principal.phone, principal.phone_verified),
    )
    for kind, value, verified in claims:
        if not value or not verified:
            continue
        try:
            out.append(Identifier(type=kind, value=value))
        except (InvalidIdentifier, ValueError):
            logger.info("verified claim is not a usable identifier", extra={"type": kind.value})
    return out


def registration_event(principal: Principal, identifiers: list[Identifier], now: datetime) -> ChannelEvent:
    """The ``customer.registered`` event of a sign-in: one id per (sub, identifiers), no personal data."""
    keys = "|".join(sorted(i.key for i in identifiers))
    source = "cognito:" + hashlib.sha256(f"{principal.subject}|{keys}".encode()).hexdigest()[:40]
    return ChannelEvent(
        event_id=event_id_for(SIGNIN_CHANNEL, source),
        channel=SIGNIN_CHANNEL,
        type=EventType.CUSTOMER_REGISTERED,
        occurred_at=now,
        source_event_id=source,
        identifiers=identifiers,
        payload=ProfilePayload(verified=True),
    )


class CustomerFinder:
    """Principal -> ``Me``: a read of the graph, or the sign-in resolved as a channel event."""

    def __init__(
        self,
        store: IdentityStore | None = None,
        resolver: Resolver | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.store = store or IdentityStore()
        self.resolver = resolver or Resolver(self.store)
        self.events = events or EventLog(self.store.table)

    def find(self, principal: Principal) -> Me:
        identifiers = self.resolver.policy.usable(verified_identifiers(principal))
        if not identifiers:
            raise Forbidden(
                "verify your email address or phone number to use your account", code="verification_required"
            )
        owners = self.store.owners(identifiers)
        known = self._known(identifiers, owners)
        if known is not None:
            return self._me(known, identifiers)
        event = self.recorded(registration_event(principal, identifiers, datetime.now(UTC)))
        result = self.resolver.resolve(event)
        if result.customer_id is None:
            raise Forbidden("this sign-in cannot be linked to a customer", code="verification_required")
        if result.quarantined:
            logger.warning("sign-in links customers under review", extra={"review_id": result.quarantined})
        profile = self.store.profile(self.store.resolve(result.customer_id))
        if profile is None:
            raise Forbidden("this sign-in cannot be linked to a customer", code="verification_required")
        self._confirmed([i for i in identifiers if i not in owners])
        logger.info(
            "sign-in linked",
            extra={
                "customer_id": profile["customer_id"],
                "new_customer": result.created,
                "event_id": event.event_id,
            },
        )
        return self._me(profile, identifiers, signed_up=True)

    def _confirmed(self, identifiers: list[Identifier]) -> None:
        """Addresses the graph did not know, now verified (the pool delivered a code to them), work:
        lift an older hard-bounce mark of each on every channel it serves."""
        store = NotifyStore(self.store.table)
        now = datetime.now(UTC)
        for identifier in identifiers:
            for channel, kind in CONTACT_TYPE.items():
                if kind == identifier.type.value and store.clear_undeliverable(
                    channel, identifier.value, before=now
                ):
                    logger.info(
                        "address deliverable again", extra={"channel": channel, "provider": "cognito"}
                    )

    def recorded(self, event: ChannelEvent) -> ChannelEvent:
        """Record ``event`` once; when it was recorded before, the stored copy (same timeline key).

        An erased customer's events are anonymised (no identifiers): such a copy is not reused.
        """
        if self.events.record(event):
            return event
        stored = from_item(self.events.get(event.event_id))
        return stored if stored.identifiers else event

    def _known(self, identifiers: list[Identifier], owners: dict[Identifier, str]) -> Item | None:
        """The one active customer owning every identifier, or None (then the sign-in resolves)."""
        if len(owners) != len(identifiers):
            return None
        live = {self.store.resolve(owner) for owner in set(owners.values())}
        if len(live) != 1:
            return None
        profile = self.store.profile(live.pop())
        if profile is None or profile.get("status") != ACTIVE or profile.get("lock"):
            return None
        return profile

    @staticmethod
    def _me(profile: Item, identifiers: list[Identifier], *, signed_up: bool = False) -> Me:
        cid = str(profile["customer_id"])
        return Me(
            customer_id=cid,
            customer_ids=(cid, *(profile.get("absorbed_ids") or [])),
            identifiers=tuple(identifiers),
            signed_up=signed_up,
        )
