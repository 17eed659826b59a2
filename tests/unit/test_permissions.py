"""Permissions proven, not assumed: every AWS call a function made is allowed by its policy.

The calls are recorded across the whole suite (handlers loaded by ``tests.support.lambdas``, and
the local stack's workers in the end-to-end tests and the demo, see ``devstack/calls.py``);
``test_every_recorded_call_is_allowed`` runs last (``tests/conftest.py`` orders it).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from devstack import calls
from devstack.template import load, resources_of
from tests.support.lambdas import LambdaContext, load_event, load_function
from tests.support.permissions import (
    check,
    expanded_policies,
    function_for,
    recorded_calls,
    requests_of,
)

TEMPLATE = load()


@pytest.fixture(scope="module")
def policies() -> dict[str, list[dict[str, Any]]]:
    return expanded_policies(TEMPLATE)


def _sender_visibility_call(function: str = "SendEmailFunction") -> dict[str, Any]:
    return calls.call_record(
        function,
        "sqs",
        "ChangeMessageVisibility",
        {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/loyalty-local-notify-email"},
    )


def test_every_function_of_the_template_has_its_policy_expanded(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    assert set(policies) == set(resources_of(TEMPLATE, "AWS::Serverless::Function"))
    for logical, statements in policies.items():  # its own statements, resolved to real ARNs
        own = [s for s in statements if "Resource" in s]
        assert own, logical
        assert all("arn:aws:" in str(s["Resource"]) or s["Resource"] == "*" for s in own), logical


def test_a_policy_missing_one_action_fails_the_check(policies: dict[str, list[dict[str, Any]]]) -> None:
    # Given the senders' retry backoff call, allowed by the template as it is
    call = _sender_visibility_call()
    assert check([call], policies) == []
    # When the action is removed from the email sender's policy
    broken = copy.deepcopy(TEMPLATE)
    for policy in broken["Resources"]["SendEmailFunction"]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != "sqs:ChangeMessageVisibility"] or [
                "sqs:GetQueueUrl"
            ]
    # Then the same call is denied
    denied = check([call], expanded_policies(broken))
    assert [str(d) for d in denied] == [
        "SendEmailFunction: sqs:ChangeMessageVisibility on "
        "arn:aws:sqs:eu-west-1:123456789012:loyalty-local-notify-email"
    ]


def test_a_policy_template_scoped_to_another_resource_fails_the_check(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    # the ingest webhook may send to the ingest queue only (SQSSendMessagePolicy, expanded by SAM)
    ok = calls.call_record(
        "IngestWebhookFunction",
        "sqs",
        "SendMessage",
        {"QueueUrl": "https://x/123456789012/loyalty-local-ingest"},
    )
    other = calls.call_record(
        "IngestWebhookFunction",
        "sqs",
        "SendMessage",
        {"QueueUrl": "https://x/123456789012/loyalty-local-points"},
    )
    assert check([ok], policies) == []
    assert [d.action for d in check([other], policies)] == ["sqs:SendMessage"]


def test_transactions_and_indexes_are_authorised_per_item_and_per_index() -> None:
    record = calls.call_record(
        "F",
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "t"}}]},
    )
    assert [a for a, _ in requests_of(record)] == ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    query = calls.call_record("F", "dynamodb", "Query", {"TableName": "t", "IndexName": "gsi1"})
    assert requests_of(query) == [
        ("dynamodb:Query", "arn:aws:dynamodb:eu-west-1:123456789012:table/t/index/gsi1")
    ]


def test_one_code_serving_several_functions_is_told_apart_by_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_CHANNEL", "sms")
    assert function_for("send_notification") == "SendSmsFunction"
    monkeypatch.setenv("NOTIFY_CHANNEL", "whatsapp")
    assert function_for("send_notification") == "SendWhatsAppFunction"


def test_a_handler_loaded_for_tests_records_its_calls(stack: Any, lambda_context: LambdaContext) -> None:
    handler = load_function("record_events").handler
    assert handler(load_event("sqs/record_events.json"), lambda_context) == {"batchItemFailures": []}
    mine = [r for r in recorded_calls() if r["function"] == "RecordEventsFunction"]
    assert {(r["service"], r["operation"]) for r in mine} >= {("dynamodb", "PutItem")}
    table = stack.ref("LoyaltyTable")
    assert all(r["params"].get("TableName") == table for r in mine if r["service"] == "dynamodb")


def _worker_calls() -> list[dict[str, Any]]:
    directory = os.environ.get("DEVSTACK_CALL_LOG")
    return calls.read_logs(Path(directory)) if directory else []


def test_every_recorded_call_is_allowed(policies: dict[str, list[dict[str, Any]]]) -> None:
    records = recorded_calls() + _worker_calls()
    if not records:
        pytest.skip("no handler ran in this session: run it with the suite (it is ordered last)")
    denied = check(records, policies)
    seen = sorted({f for r in records for f in r["function"].split("|")})
    assert denied == [], f"calls the template's policies deny (functions seen: {seen}):\n" + "\n".join(
        str(d) for d in denied
    )
