"""Per-function settings: each function declares what it needs, the template sets it, a cold start
without it fails naming it, and no resource a function is given silently reads as ""."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import load, resources_of
from loyalty.errors import MissingSetting
from loyalty.settings import Settings, env_name, get_settings, requires
from tests.support.lambdas import LambdaContext, load_function

TEMPLATE = load()
FUNCTIONS = resources_of(TEMPLATE, "AWS::Serverless::Function")
GLOBAL_ENV = set(TEMPLATE["Globals"]["Function"].get("Environment", {}).get("Variables", {}))
CODES = sorted({str(f["Properties"]["CodeUri"]).rstrip("/").rsplit("/", 1)[-1] for f in FUNCTIONS.values()})
RESOURCES = {
    env_name(name)
    for name, field in Settings.model_fields.items()
    if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("resource")
}
# Resources a function is given but resolves per message, failing that message loudly when unset:
PER_MESSAGE = {
    # the channel queue of each planned message (unset: that record fails as transient)
    "FanoutNotificationsFunction": {
        "NOTIFY_EMAIL_QUEUE_URL",
        "NOTIFY_SMS_QUEUE_URL",
        "NOTIFY_PUSH_QUEUE_URL",
        "NOTIFY_WHATSAPP_QUEUE_URL",
    },
    # one code, one function per channel: each channel's provider settings are its own
    "SendEmailFunction": {"NOTIFY_EMAIL_FROM", "NOTIFY_LINK_BASE_URL", "NOTIFY_LINK_SECRET_ID"},
    "SendWhatsAppFunction": {"WHATSAPP_SECRET_ID"},
}


def _code(logical: str) -> str:
    return str(FUNCTIONS[logical]["Properties"]["CodeUri"]).rstrip("/").rsplit("/", 1)[-1]


def _own_env(logical: str) -> set[str]:
    return set(FUNCTIONS[logical]["Properties"].get("Environment", {}).get("Variables", {}))


def _env(logical: str) -> set[str]:
    return GLOBAL_ENV | _own_env(logical)


def _declared(code: str) -> tuple[str, ...]:
    declared: tuple[str, ...] = getattr(load_function(code).handler, "required_settings", ())
    return declared


@pytest.mark.parametrize("logical", sorted(FUNCTIONS))
def test_every_setting_a_function_requires_is_in_its_template_environment(logical: str) -> None:
    declared = _declared(_code(logical))
    assert declared, f"{logical} declares no settings (@requires on its handler)"
    assert set(declared) <= _env(logical), f"{logical} lacks {set(declared) - _env(logical)}"


@pytest.mark.parametrize("logical", sorted(FUNCTIONS))
def test_every_resource_a_function_is_given_is_declared(logical: str) -> None:
    given = _own_env(logical) & RESOURCES  # Globals (TABLE_NAME) reach functions that never use them
    undeclared = given - set(_declared(_code(logical))) - PER_MESSAGE.get(logical, set())
    assert not undeclared, f"{logical} would read {undeclared} as '' when unset: declare them"


def test_no_string_setting_defaults_to_empty_unless_marked() -> None:
    blank = {n for n, f in Settings.model_fields.items() if f.annotation is str and f.default == ""}
    assert {env_name(n) for n in blank} - RESOURCES == {
        "IDENTITY_BLOCKLIST",
        "IDENTIFIER_LIMITS",
        "PUSH_PLATFORM_APPLICATION_ARN",
        "SMS_ORIGINATION_IDENTITY",
        "NOTIFY_SES_CONFIGURATION_SET",
    }  # Blankable: each says what empty means


@pytest.mark.parametrize("code", CODES)
def test_a_cold_start_without_a_required_setting_fails_naming_it(
    code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_function(code).handler
    declared = _declared(code)
    for missing in declared:
        for name in declared:
            monkeypatch.setenv(name, "configured")
        monkeypatch.delenv(missing)
        get_settings.cache_clear()
        with pytest.raises(MissingSetting, match=missing):
            handler({}, LambdaContext())
    get_settings.cache_clear()


def test_requires_names_every_missing_setting_and_passes_once_set(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    @requires("ingest_queue_url", "staff_issuer")
    def handler(event: dict[str, Any], context: object) -> str:
        calls.append(event)
        return "done"

    monkeypatch.delenv("INGEST_QUEUE_URL", raising=False)
    monkeypatch.delenv("STAFF_ISSUER", raising=False)
    get_settings.cache_clear()
    with pytest.raises(MissingSetting, match="INGEST_QUEUE_URL, STAFF_ISSUER"):
        handler({}, None)
    assert calls == []
    monkeypatch.setenv("INGEST_QUEUE_URL", "https://queue")
    monkeypatch.setenv("STAFF_ISSUER", "https://issuer")
    get_settings.cache_clear()
    assert handler({"n": 1}, None) == "done"
    assert calls == [{"n": 1}]
    assert getattr(handler, "required_settings", None) == ("INGEST_QUEUE_URL", "STAFF_ISSUER")
    get_settings.cache_clear()


def test_requires_refuses_a_setting_that_does_not_exist() -> None:
    with pytest.raises(ValueError, match="no_such_queue"):
        requires("table_name", "no_such_queue")
