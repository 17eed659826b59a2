"""template.yaml and the code agree, and the template keeps the platform's rules.

These run over WHATEVER the template declares, so a function, queue or stream consumer added
later is held to the same rules (DLQs, redrive, visibility, retries, least privilege).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from devstack.template import ROOT, function_environment, function_property, load, resources_of
from loyalty.settings import Settings

TEMPLATE = load()
FUNCTIONS = resources_of(TEMPLATE, "AWS::Serverless::Function")
QUEUES = resources_of(TEMPLATE, "AWS::SQS::Queue")
ALARMS = resources_of(TEMPLATE, "AWS::CloudWatch::Alarm")


def _events(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, ev["Properties"])
        for name, fn in FUNCTIONS.items()
        for ev in fn["Properties"].get("Events", {}).values()
        if ev["Type"] == kind
    ]


def _dlqs() -> set[str]:
    return {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in QUEUES.values()
        if "RedrivePolicy" in q.get("Properties", {})
    }


def _on_failure_targets() -> set[str]:
    out = set()
    for _, props in _events("DynamoDB"):
        dest = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", {})
        if "Fn::GetAtt" in dest:
            out.add(dest["Fn::GetAtt"][0])
    return out


@pytest.mark.parametrize("logical", sorted(FUNCTIONS))
def test_every_function_has_its_code_and_handler(logical: str) -> None:
    props = FUNCTIONS[logical]["Properties"]
    module, attr = props["Handler"].rsplit(".", 1)
    path = ROOT / props["CodeUri"] / f"{module}.py"
    assert path.is_file(), f"{logical}: {path} missing"
    tree = ast.parse(path.read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert attr in defined, f"{logical}: {module}.{attr} not defined"


def test_every_function_dir_is_in_the_template() -> None:
    declared = {Path(fn["Properties"]["CodeUri"]).name for fn in FUNCTIONS.values()}
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/app.py")}
    assert on_disk == declared


def test_every_setting_is_set_by_the_template_or_has_a_default() -> None:
    set_somewhere = {k for name in FUNCTIONS for k in function_environment(TEMPLATE, name)}
    for field in Settings.model_fields.values():
        assert field.alias is not None
        assert field.alias in set_somewhere or not field.is_required(), field.alias


def test_queue_url_variables_point_at_queues() -> None:
    for name in FUNCTIONS:
        for key, value in function_environment(TEMPLATE, name).items():
            if key.endswith("_QUEUE_URL"):
                assert isinstance(value, dict)
                assert value.get("Ref") in QUEUES, f"{name}.{key}"


@pytest.mark.parametrize("logical", sorted(set(QUEUES) - _dlqs() - _on_failure_targets()))
def test_every_work_queue_has_a_dlq_with_enough_redrive(logical: str) -> None:
    redrive = QUEUES[logical]["Properties"].get("RedrivePolicy")
    assert redrive, f"{logical} has no DLQ"
    assert int(redrive["maxReceiveCount"]) >= 5


@pytest.mark.parametrize("logical", sorted(_dlqs() | _on_failure_targets()))
def test_every_dead_letter_queue_is_alarmed(logical: str) -> None:
    watched = {
        dim["Value"]["Fn::GetAtt"][0]
        for alarm in ALARMS.values()
        for dim in alarm["Properties"].get("Dimensions", [])
        if isinstance(dim.get("Value"), dict) and "Fn::GetAtt" in dim["Value"]
    }
    assert logical in watched


@pytest.mark.parametrize(("function", "props"), _events("SQS"))
def test_sqs_consumers_report_partial_failures_and_fit_the_visibility_timeout(
    function: str, props: dict[str, Any]
) -> None:
    assert props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
    queue = QUEUES[props["Queue"]["Fn::GetAtt"][0]]["Properties"]
    timeout = int(function_property(TEMPLATE, function, "Timeout", 3))
    assert int(queue.get("VisibilityTimeout", 30)) >= 6 * timeout


@pytest.mark.parametrize(("function", "props"), _events("DynamoDB"))
def test_stream_consumers_never_block_a_shard(function: str, props: dict[str, Any]) -> None:
    assert props.get("BisectBatchOnFunctionError") is True
    assert 0 <= int(props["MaximumRetryAttempts"]) <= 5
    assert 60 <= int(props["MaximumRecordAgeInSeconds"]) <= 6 * 3600
    assert props["DestinationConfig"]["OnFailure"]["Destination"]
    assert props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]


def test_at_most_two_stream_consumers() -> None:
    assert 1 <= len(_events("DynamoDB")) <= 2


def _statements(fn: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in fn["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            out.extend(policy["Statement"])
    return out


@pytest.mark.parametrize("logical", sorted(FUNCTIONS))
def test_least_privilege_no_wildcard_actions(logical: str) -> None:
    for policy in FUNCTIONS[logical]["Properties"].get("Policies", []):
        assert not isinstance(policy, str) or not re.search(r"FullAccess|Admin", policy), policy
    for statement in _statements(FUNCTIONS[logical]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a != "*" and not a.endswith(":*") for a in actions), (logical, actions)
        resources = statement.get("Resource")
        assert resources != "*", (logical, actions)


def test_table_is_on_demand_with_stream_ttl_and_pitr() -> None:
    (table,) = resources_of(TEMPLATE, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]
