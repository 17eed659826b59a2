"""Templates as data: the marketing API (list, preview, publish), validation, versions, use by senders."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.template import Resolver
from loyalty.errors import Conflict
from loyalty.notify.fanout import Fanout
from loyalty.notify.sender import send
from loyalty.notify.template_store import CURRENT, TemplateStore, template_key, version_sk
from loyalty.store.table import Table
from tests.conftest import drain
from tests.support import notify as fx
from tests.support.lambdas import LambdaContext, http_api_event, load_event, load_function

NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
SMS = {"text": "{first_name}: +{points} puntos ({order_id}). ¡Gracias!"}


@pytest.fixture
def table(stack: Resolver) -> Table:
    return Table()


def call(method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> dict[str, Any]:
    resource = "/templates/{intent}/{channel}/{lang}" if params else path
    event = http_api_event(
        method,
        path,
        json.dumps(body) if body is not None else None,
        path_parameters=params,
        resource=resource,
        role="marketing",
    )
    result: dict[str, Any] = load_function("templates_api").handler(event, LambdaContext())
    return result


def put(intent: str, channel: str, lang: str, content: dict[str, Any]) -> dict[str, Any]:
    params = {"intent": intent, "channel": channel, "lang": lang}
    return call("PUT", f"/templates/{intent}/{channel}/{lang}", {"content": content}, params)


def test_the_list_starts_with_the_built_in_texts_as_version_0(stack: Resolver) -> None:
    answer = call("GET", "/templates")
    assert answer["statusCode"] == 200
    rows = json.loads(answer["body"])["templates"]
    assert len(rows) == 8 * 4 * 2  # intents x channels x languages
    (row,) = [r for r in rows if (r["intent"], r["channel"], r["language"]) == ("points_earned", "sms", "es")]
    assert row["version"] == 0
    assert row["content"] == {
        "text": "{first_name}, ya tienes disponibles {points} puntos de tu compra {order_id}."
    }


def test_preview_renders_a_draft_with_sample_data(stack: Resolver) -> None:
    draft = {"intent": "points_earned", "channel": "sms", "language": "es", "content": SMS}
    answer = call("POST", "/templates/preview", draft)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["rendered"] == {"text": "Alejandra: +1250 puntos (W-100234). ¡Gracias!"}


@pytest.mark.parametrize(
    ("channel", "content", "code"),
    [
        ("sms", {"text": "Hola {first_name}, tu saldo es {balance}"}, "unknown_placeholder"),
        ("email", {"subject": "{points} puntos", "text": "Hola {customer.name}"}, "unknown_placeholder"),
        ("sms", {"text": "{points:d} puntos"}, "unknown_placeholder"),
        ("sms", {"text": "{} puntos"}, "unknown_placeholder"),
        ("sms", {"text": "Hola {first_name"}, "invalid_template"),
        ("sms", {"text": "{first_name}, " + "x" * 150}, "sms_too_long"),
        ("sms", {"text": "ok", "subject": "no"}, "invalid_template"),
        ("whatsapp", {"template": "points_v2", "parameters": ["first_name", "iban"]}, "unknown_placeholder"),
    ],
)
def test_an_invalid_template_is_a_422_and_nothing_is_published(
    table: Table, channel: str, content: dict[str, Any], code: str
) -> None:
    answer = put("points_earned", channel, "es", content)
    assert answer["statusCode"] in {400, 422}
    assert json.loads(answer["body"])["error"]["code"] == code
    assert table.get(template_key("points_earned", channel, "es"), CURRENT) is None


def test_an_unknown_intent_is_a_404(stack: Resolver) -> None:
    assert put("lottery_won", "sms", "es", SMS)["statusCode"] == 404


def test_publishing_writes_versions_and_the_next_message_uses_the_new_text(
    table: Table, sqs: Any, stack: Resolver
) -> None:
    # Given marketing publishes the Spanish SMS of points_earned twice
    first = put("points_earned", "sms", "es", {"text": "v1 {points}"})
    second = put("points_earned", "sms", "es", SMS)
    assert (first["statusCode"], second["statusCode"]) == (201, 201)
    assert json.loads(second["body"])["version"] == 2
    assert json.loads(second["body"])["published_by"] == "marketing@demo.local"
    pk = template_key("points_earned", "sms", "es")
    assert table.get(pk, version_sk(1)) is not None
    assert table.get(pk, version_sk(2)) is not None
    # When the next points_earned message goes to an SMS-only customer
    fx.seed_customer(table, "c_1", granted={"sms": True}, preferred="sms")
    (outcome,) = Fanout().fan_out(fx.lot("c_1", "T1", "available"), fx.lot("c_1", "T1", "pending"), now=NOON)
    drain(sqs, stack.refs["NotifySmsQueue"])
    assert send("c_1", outcome.message_id, "sms", now=NOON).status == "sent"
    # Then it says the published text, and the message and its timeline record version 2
    (sent,) = table.query_all("CUST#c_1", sk_prefix="NOTIF#OUT#")
    assert sent["content"]["text"] == "Ana: +120 puntos (T1). ¡Gracias!"
    message = table.get("CUST#c_1", f"NOTIF#MSG#{outcome.message_id}")
    assert message is not None
    assert message["template_version"] == 2
    entries = [i for i in table.query_all("CUST#c_1", sk_prefix="TL#") if i.get("status") == "sent"]
    assert [e["template_version"] for e in entries] == [2]
    # And English customers still get the built-in English text (version 0)
    assert TemplateStore().current("points_earned", "sms", "en") == (None, 0)


def test_concurrent_publishes_never_lose_a_version(table: Table) -> None:
    def publish(n: int) -> int | None:
        try:
            return int(
                TemplateStore().publish("welcome", "sms", "es", {"text": f"Hola {{first_name}} {n}"}, "t")[
                    "version"
                ]
            )
        except Conflict:
            return None

    with ThreadPoolExecutor(max_workers=6) as pool:
        won = [v for v in pool.map(publish, range(12)) if v is not None]
    assert sorted(won) == list(range(1, len(won) + 1))
    current = table.get(template_key("welcome", "sms", "es"), CURRENT)
    assert current is not None
    assert current["version"] == len(won)


def test_the_sample_publish_event_publishes_version_1(table: Table, sample_issuer: str) -> None:
    answer = load_function("templates_api").handler(load_event("api/templates_publish.json"), LambdaContext())
    assert answer["statusCode"] == 201
    assert json.loads(answer["body"])["published_by"] == "marketing@demo.local"
    assert TemplateStore().current("points_earned", "sms", "es")[1] == 1
