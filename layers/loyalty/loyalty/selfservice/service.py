"""Customer self-service use cases: each one acts on the signed-in customer (``Me``) only.

Everything is delegated to the capability that owns it: the identity views and the event log
(profile, preferences), points (balance, ledger, redemptions), stock (reservations with the
per-customer caps, back-in-stock alerts). What this module adds is the ownership rule: an id in
a path is checked against the resolved customer and answers 404 when it is someone else's, the
same answer as an id that does not exist, so nothing leaks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.identity.service import CustomerService
from loyalty.models.events import ChannelEvent, Consent, EventType, ProfilePayload, event_id_for
from loyalty.notify.preferences import DeliveryChange, delivery_of, save_delivery
from loyalty.observability import logger
from loyalty.points.service import PointsService
from loyalty.points.store import decode_cursor
from loyalty.selfservice.signin import CustomerFinder, Me
from loyalty.selfservice.views import MeRedemptionRequest, MeReservationRequest, MeView, PreferencesPatch
from loyalty.settings import get_settings
from loyalty.stock.service import (
    ReservationCaps,
    ReservationRequest,
    StockAlertRequest,
    StockService,
    reservation_view,
)

CONSENT_SOURCE = "selfservice"
_TIMING = frozenset({"quiet_hours", "frequency", "marketing_weekly_max"})
_HIDDEN = frozenset({"pk", "sk", "entity", "gsi1pk", "gsi1sk", "requested_id"})


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _HIDDEN}


class SelfService:
    def __init__(
        self,
        finder: CustomerFinder | None = None,
        customers: CustomerService | None = None,
        points: PointsService | None = None,
    ) -> None:
        self.finder = finder or CustomerFinder()
        self.customers = customers or CustomerService(self.finder.store)
        self.points_service = points

    @property
    def _points(self) -> PointsService:
        if self.points_service is None:
            self.points_service = PointsService()
        return self.points_service

    # -- profile and preferences ------------------------------------------------------------
    def profile(self, me: Me) -> MeView:
        return MeView.of(self.customers.view(me.customer_id), delivery_of(me.customer_ids))

    def update_preferences(self, me: Me, change: PreferencesPatch, idempotency_key: str | None) -> MeView:
        """Consents, language and time zone: a canonical event resolved like any channel's (follows
        merges); quiet hours and frequency: the customer's preferences statement."""
        timing = change.model_fields_set & _TIMING
        if not change.consents and change.language is None and change.timezone is None and not timing:
            raise InvalidInput("nothing to change", code="empty_patch")
        customer_id = me.customer_id
        if change.consents or change.language is not None or change.timezone is not None:
            customer_id = self._record_profile_change(me, change, idempotency_key)
        if timing:
            save_delivery(
                customer_id,
                DeliveryChange.model_validate(change.model_dump(include=timing)),
                source=CONSENT_SOURCE,
            )
        return MeView.of(self.customers.view(customer_id), delivery_of((customer_id, *me.customer_ids)))

    def _record_profile_change(self, me: Me, change: PreferencesPatch, idempotency_key: str | None) -> str:
        key = idempotency_key or uuid.uuid4().hex
        source = f"{CONSENT_SOURCE}:{uuid.uuid5(uuid.NAMESPACE_URL, f'{me.customer_id}:{key}').hex}"
        event = ChannelEvent(
            event_id=event_id_for(change.channel, source),
            channel=change.channel,
            type=EventType.CUSTOMER_UPDATED
            if change.language or change.timezone
            else EventType.CONSENT_CHANGED,
            occurred_at=datetime.now(UTC),
            source_event_id=source,
            identifiers=list(me.identifiers),
            payload=ProfilePayload(
                locale=change.language,
                timezone=change.timezone,
                verified=True,
                consents=[
                    Consent(channel=ch, granted=granted, source=CONSENT_SOURCE)
                    for ch, granted in sorted(change.consents.items())
                ],
            ),
        )
        stored = self.finder.recorded(event)
        if (stored.type, stored.payload) != (event.type, event.payload):
            raise Conflict(
                "this Idempotency-Key was used for a different change",
                code="idempotency_key_reused",
                field="Idempotency-Key",
            )
        result = self.finder.resolver.resolve(stored)
        logger.info(
            "preferences changed",
            extra={"customer_id": result.customer_id, "event_id": stored.event_id, "type": stored.type.value},
        )
        return result.customer_id or me.customer_id

    # -- points ------------------------------------------------------------------------------
    def points(self, me: Me) -> dict[str, Any]:
        return _public(self._points.points(me.customer_id))

    def ledger(self, me: Me, limit: int, cursor: str | None) -> dict[str, Any]:
        start = decode_cursor(cursor)
        if start is not None and (
            start.get("pk") != f"CUST#{me.customer_id}" or not str(start.get("sk", "")).startswith("PTS#E#")
        ):
            raise InvalidInput("malformed cursor", code="invalid_cursor", field="cursor")
        return self._points.ledger(me.customer_id, limit, cursor)

    def redeem(self, me: Me, request: MeRedemptionRequest, key: str) -> tuple[dict[str, Any], bool]:
        """(redemption, replay): spend points once per Idempotency-Key."""
        item, replay = self._points.redeem(me.customer_id, request.points, key, request.channel, request.note)
        return _public(item), replay

    def cancel_redemption(self, me: Me, redemption_id: str) -> dict[str, Any]:
        """Cancel one's own redemption (kept under one's own key: another's id is not found)."""
        return _public(self._points.cancel_redemption(me.customer_id, redemption_id))

    # -- reservations and alerts -------------------------------------------------------------
    def reservations(self, me: Me) -> list[dict[str, Any]]:
        return StockService().customer_reservations(me.customer_id)

    def reserve(self, me: Me, request: MeReservationRequest, key: str) -> tuple[dict[str, Any], bool]:
        """(reservation, created), within the customer's caps (active reservations, units per SKU)."""
        settings = get_settings()
        caps = ReservationCaps(
            active=settings.reservation_cap_active, units_per_sku=settings.reservation_cap_units_per_sku
        )
        full = ReservationRequest(customer_id=me.customer_id, **request.model_dump())
        item, created = StockService().create_reservation(full, key, caps)
        return reservation_view(item), created

    def cancel_reservation(self, me: Me, reservation_id: str) -> dict[str, Any]:
        """Release one's own reservation; another customer's answers exactly like an unknown id."""
        item = StockService().get_reservation(reservation_id)
        if not me.owns(item.get("customer_id")):
            raise NotFound(f"reservation {reservation_id} not found", code="reservation_not_found")
        return reservation_view(StockService().release_reservation(reservation_id))

    def subscribe_alert(self, me: Me, request: StockAlertRequest) -> dict[str, Any]:
        return StockService().subscribe_alert(me.customer_id, request)
