"""The message entity owns its keys: to_item / from_item round trips, on real fan-out items too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.notify.fanout import Fanout
from loyalty.notify.message import Message
from loyalty.store.table import Table
from tests.support import notify as fx

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
text = st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=12)


@given(
    message_id=st.uuids().map(str),
    customer_id=text.map(lambda t: f"c_{t}"),
    intent=st.sampled_from(["welcome", "points_expiring", "back_in_stock", "digest"]),
    klass=st.sampled_from(["critical", "transactional", "marketing"]),
    minutes=st.integers(min_value=0, max_value=10**6),
    locale=st.none() | st.sampled_from(["es", "en-GB"]),
    data=st.dictionaries(text, text | st.integers(), max_size=4),
    topic=st.none() | st.sampled_from(["points", "offers", "stock_alerts"]),
    status=st.none() | st.sampled_from(["queued", "deferred", "sent", "suppressed"]),
    channels=st.none()
    | st.lists(st.sampled_from(["email", "sms", "push", "whatsapp"]), unique=True, min_size=1),
)
def test_to_item_and_back_is_the_same_message(
    message_id: str,
    customer_id: str,
    intent: str,
    klass: str,
    minutes: int,
    locale: str | None,
    data: dict[str, object],
    topic: str | None,
    status: str | None,
    channels: list[str] | None,
) -> None:
    created = NOON + timedelta(minutes=minutes)
    message = Message(
        message_id=message_id,
        customer_id=customer_id,
        intent=intent,
        klass=klass,  # type: ignore[arg-type]
        created_at=created,
        locale=locale,
        data=data,
        topic=topic,
        status=status,
        channels=channels,
    )
    item = message.to_item()
    assert (item["pk"], item["sk"]) == (f"CUST#{customer_id}", f"NOTIF#MSG#{message_id}")
    assert item["tl_sk"] == f"TL#{created.isoformat()}#notif-{message_id}"
    again = Message.from_item(item)
    assert again.to_item() == item
    assert again.updated_at == created


def test_a_stored_fan_out_message_reads_back_with_its_state(stack: Resolver) -> None:
    table = Table()
    fx.seed_customer(table, "c_1", granted={"email": True})
    (outcome,) = Fanout().fan_out(fx.points_expiring("c_1"), None, now=NOON)
    stored = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert stored is not None
    message = Message.from_item(stored)
    assert (message.intent, message.klass, message.topic, message.status) == (
        "points_expiring",
        "marketing",
        "points",
        outcome.status,
    )
    assert message.to_item() == stored
