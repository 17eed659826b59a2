"""Messages customers control: signed links, one-click unsubscribe, the preference center.

The customer is created by identity itself (so the consent events the links record are applied
by the real resolver), then messages go through the real fan-out and sender (outbox mode).
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.template import Resolver
from loyalty.errors import NotFound
from loyalty.eventlog.store import EventLog, from_item
from loyalty.identity.resolve import Resolver as IdentityResolver
from loyalty.models.events import ChannelEvent, EventType, ProfilePayload
from loyalty.notify import links
from loyalty.notify.fanout import Fanout
from loyalty.notify.preferences import change_preferences, preferences
from loyalty.notify.sender import send
from loyalty.store.table import Item, Table
from tests.conftest import drain
from tests.support import identity as idfx
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, api_event, load_event, load_function

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Madrid: not quiet
SECRET = "local-unsubscribe-secret"  # config/local-secrets.json, key "unsubscribe"
ADDRESS, PHONE = "ana.garcia@correo.es", "+34611222333"


@pytest.fixture
def table(stack: Resolver) -> Table:
    return Table()


def customer(email_addr: str = ADDRESS, *, sms: bool = False) -> str:
    """A customer created by identity: email consented (and SMS when asked), Spanish, Madrid."""
    consents = [("email", True)] + ([("sms", True)] if sms else [])
    ev = idfx.event(
        ("email", email_addr),
        ("phone", PHONE),
        profile={"first_name": "Ana", "locale": "es", "timezone": "Europe/Madrid"},
        consents=consents,
    )
    return str(IdentityResolver().resolve(ev).customer_id)


def deliver(table: Table, sqs: Any, stack: Resolver, item: Item, run: str) -> tuple[str, str | None]:
    """Fan one table change out at NOON and send what was queued; (status, reason or channel)."""
    (outcome,) = Fanout().fan_out(item, None, now=NOON)
    for logical in ("NotifyEmailQueue", "NotifySmsQueue"):
        drain(sqs, stack.refs[logical])
    if outcome.status != "queued":
        return outcome.status, outcome.reason
    assert outcome.channel is not None
    assert send(outcome.customer_id, outcome.message_id, outcome.channel, now=NOON).status == "sent"
    return "sent", outcome.channel


def consent_events() -> list[ChannelEvent]:
    """The consent.changed events recorded today (the event log's day index)."""
    found, _ = EventLog().of_day(datetime.now(UTC).date(), limit=100)
    return [e for e in found if e.type == EventType.CONSENT_CHANGED]


def outbox(table: Table, customer_id: str) -> list[Item]:
    return list(table.query_all(f"CUST#{customer_id}", sk_prefix="NOTIF#OUT#"))


def apply_recorded(event_id: str) -> None:
    """What the pipeline does with a recorded event: identity resolves it (and applies consents)."""
    IdentityResolver().resolve(from_item(EventLog().get(event_id)))


def call(method: str, kind: str, token: str, form: dict[str, str] | None = None) -> dict[str, Any]:
    body = urlencode(form) if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    event = api_event(
        method,
        f"/{kind}/{token}",
        body,
        headers,
        path_parameters={"token": token},
        resource=f"/{kind}/{{token}}",
    )
    result: dict[str, Any] = load_function("notify_links").handler(event, LambdaContext())
    return result


def token_of(url: str) -> str:
    return urlparse(url).path.rsplit("/", 1)[-1]


# -- the email --------------------------------------------------------------------------------------
def test_a_marketing_email_carries_one_click_unsubscribe_headers_and_a_visible_link(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a customer reachable by email only
    cid = customer()
    # When a marketing message (points expiring) is sent
    assert deliver(table, sqs, stack, fx.points_expiring(cid), "1") == ("sent", "email")
    (sent,) = outbox(table, cid)
    raw = email.message_from_string(sent["content"]["raw"], policy=email.policy.default)
    # Then the raw email has both RFC 8058 headers, an https link to /unsubscribe/{token}
    unsubscribe = str(raw["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://")
    assert unsubscribe.endswith(">")
    assert "/unsubscribe/" in unsubscribe
    assert str(raw["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(raw["To"]) == ADDRESS
    # And the same link is visible in the text and the HTML body
    url = unsubscribe.strip("<>")
    assert url in sent["content"]["text"]
    assert url.replace("&", "&amp;") in sent["content"]["html"]
    # And the token names that customer, email and the message's topic
    claims = links.verify(token_of(url), "unsubscribe", [SECRET])
    assert (claims.customer_id, claims.channel, claims.topics) == (cid, "email", ("points",))


def test_a_transactional_email_has_no_unsubscribe_header_only_the_preference_link(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    cid = customer()
    assert deliver(table, sqs, stack, fx.lot(cid, "T1", "available"), "1") == ("sent", "email")
    (sent,) = outbox(table, cid)
    raw = email.message_from_string(sent["content"]["raw"], policy=email.policy.default)
    assert raw["List-Unsubscribe"] is None
    assert "/preferences/" in sent["content"]["text"]


# -- one click --------------------------------------------------------------------------------------
def test_one_click_post_opts_out_once_and_the_next_marketing_message_is_suppressed(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a marketing email sent to a customer
    cid = customer()
    deliver(table, sqs, stack, fx.points_expiring(cid, "2026-11-20"), "1")
    (sent,) = outbox(table, cid)
    token = token_of(sent["content"]["headers"]["List-Unsubscribe"].strip("<>"))
    # When the mail client POSTs the one-click body, twice (a retry)
    first = call("POST", "unsubscribe", token, {"List-Unsubscribe": "One-Click"})
    again = call("POST", "unsubscribe", token, {"List-Unsubscribe": "One-Click"})
    # Then both answer 200 with a page, and exactly one consent event is in the event log
    assert (first["statusCode"], again["statusCode"]) == (200, 200)
    assert first["multiValueHeaders"]["Content-Type"][0].startswith("text/html")
    events = consent_events()
    assert len(events) == 1
    assert isinstance(events[0].payload, ProfilePayload)
    assert [c.model_dump() for c in events[0].payload.consents] == [
        {"channel": "email", "granted": False, "source": "link:unsubscribe", "topic": "points"}
    ]
    # When identity applies it, the next points marketing message is suppressed with its reason
    apply_recorded(events[0].event_id)
    assert deliver(table, sqs, stack, fx.points_expiring(cid, "2026-11-21"), "2") == (
        "suppressed",
        "unsubscribed",
    )
    # And transactional email still flows (only the topic was left)
    assert deliver(table, sqs, stack, fx.lot(cid, "T9", "available"), "3") == ("sent", "email")


def test_get_shows_a_button_and_changes_nothing(table: Table, sqs: Any, stack: Resolver) -> None:
    cid = customer()
    token = links.sign(links.LinkClaims(cid, "unsubscribe", "email", ("offers",)), SECRET)
    page = call("GET", "unsubscribe", token)
    assert page["statusCode"] == 200
    assert '<form method="post"' in page["body"]
    assert "Darme de baja" in page["body"]
    assert not consent_events()


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "eyJjIjoiY18xIiwicCI6InUifQ." + "A" * 43,  # a forged mac
    ],
)
def test_a_bad_token_is_a_404_never_a_5xx(stack: Resolver, token: str) -> None:
    for method in ("GET", "POST"):
        for kind in ("unsubscribe", "preferences"):
            assert call(method, kind, token)["statusCode"] in {404, 422}


def test_a_preferences_token_does_not_unsubscribe(stack: Resolver) -> None:
    cid = customer()
    token = links.sign(links.LinkClaims(cid, "preferences"), SECRET)
    assert call("POST", "unsubscribe", token)["statusCode"] == 404


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(position=st.integers(min_value=0, max_value=200), char=st.sampled_from("AZaz09-_"))
def test_any_changed_character_invalidates_a_token(position: int, char: str) -> None:
    token = links.sign(links.LinkClaims("c_1", "unsubscribe", "email", ("points",)), SECRET)
    i = position % len(token)
    if token[i] == char or token[i] == ".":
        return
    tampered = token[:i] + char + token[i + 1 :]
    with pytest.raises(NotFound):
        links.verify(tampered, "unsubscribe", [SECRET])


def test_rotation_old_links_still_verify(stack: Resolver) -> None:
    old = links.sign(links.LinkClaims("c_1", "unsubscribe", "sms"), "old-key")
    assert links.verify(old, "unsubscribe", ["new-key", "old-key"]).channel == "sms"
    with pytest.raises(NotFound):
        links.verify(old, "unsubscribe", ["new-key"])


# -- preference center ------------------------------------------------------------------------------
def test_the_preference_center_records_changes_as_consent_events(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given a customer with email and SMS
    cid = customer(sms=True)
    token = links.sign(links.LinkClaims(cid, "preferences"), SECRET)
    page = call("GET", "preferences", token)
    assert page["statusCode"] == 200
    assert 'name="topic.email.offers" checked' in page["body"]
    # When she turns SMS off and email offers off, in English
    form = {"form": "1", "channel.email": "on", "language": "en"}
    form |= {f"topic.email.{t}": "on" for t in ("points", "stock_alerts")}
    saved = call("POST", "preferences", token, form)
    assert saved["statusCode"] == 200
    assert "Preferences saved." in saved["body"]
    (event,) = consent_events()
    apply_recorded(event.event_id)
    # Then the profile says so: SMS refused, email offers refused, language en
    now = preferences(cid)
    assert now["channels"] == {"email": True, "sms": False, "whatsapp": False}
    assert now["topics"]["email"] == {"points": True, "offers": False, "stock_alerts": True}
    assert now["language"] == "en"
    # And saving the same again records nothing new
    assert change_preferences(cid, channels={"email": True}, topics={"email": {"offers": False}}) is None


def test_the_sample_one_click_event_opts_its_customer_out(table: Table) -> None:
    # events/api/unsubscribe_one_click.json: signed with the local secret for c_0123...
    fx.seed_customer(table, "c_0123456789abcdef0123456789abcdef", contacts={"email": ADDRESS, "phone": PHONE})
    answer = load_function("notify_links").handler(
        load_event("api/unsubscribe_one_click.json"), LambdaContext()
    )
    assert answer["statusCode"] == 200
    (event,) = consent_events()
    assert isinstance(event.payload, ProfilePayload)
    assert [(c.channel, c.granted, c.topic) for c in event.payload.consents] == [("email", False, "points")]
    assert [i.value for i in event.identifiers] == [ADDRESS]


def test_the_preference_center_sets_quiet_hours_zone_and_frequency(table: Table) -> None:
    cid = customer()
    token = links.sign(links.LinkClaims(cid, "preferences"), SECRET)
    assert 'name="quiet_start"' in call("GET", "preferences", token)["body"]
    # When she asks for quiet 22:00-08:30 in the Canaries, a daily digest and 2 marketing a week
    form = {"form": "1", "channel.email": "on", "language": "es", "quiet_start": "22:00"}
    form |= {"quiet_end": "08:30", "timezone": "Atlantic/Canary", "frequency": "daily_digest"}
    form |= {"marketing_weekly_max": "2"} | {f"topic.email.{t}": "on" for t in ("points", "offers")}
    form["topic.email.stock_alerts"] = "on"
    saved = call("POST", "preferences", token, form)
    assert saved["statusCode"] == 200
    assert 'value="22:00"' in saved["body"]
    # Then the zone is a recorded event (applied by identity) and the rest is her statement
    (event,) = consent_events()
    assert isinstance(event.payload, ProfilePayload)
    assert event.payload.timezone == "Atlantic/Canary"
    apply_recorded(event.event_id)
    now = preferences(cid)
    assert (now["timezone"], now["quiet_hours"], now["frequency"], now["marketing_weekly_max"]) == (
        "Atlantic/Canary",
        {"start": "22:00", "end": "08:30"},
        "daily_digest",
        2,
    )
    # And a bad time or zone is a 422, never a 5xx, and changes nothing
    for bad in ({"quiet_start": "24:00"}, {"timezone": "Nowhere/Land"}, {"marketing_weekly_max": "many"}):
        assert call("POST", "preferences", token, form | bad)["statusCode"] == 422
    assert preferences(cid)["quiet_hours"] == {"start": "22:00", "end": "08:30"}
