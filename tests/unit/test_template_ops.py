"""Deploy and operate: two stages side by side in one account, logs that expire, alarms for all."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import Resolver, load, resources_of

TEMPLATE = load()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
FUNCTIONS = resources_of(TEMPLATE, "AWS::Serverless::Function")
# the property that names a resource in AWS, per type (a name must be unique in the account/region)
NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": ["TableName"],
    "AWS::SQS::Queue": ["QueueName"],
    "AWS::SNS::Topic": ["TopicName"],
    "AWS::SecretsManager::Secret": ["Name"],
    "AWS::SSM::Parameter": ["Name"],
    "AWS::Serverless::LayerVersion": ["LayerName"],
    "AWS::Serverless::Api": ["Name"],
    "AWS::Serverless::HttpApi": ["Name"],
    "AWS::Serverless::Function": ["FunctionName"],
    "AWS::Logs::LogGroup": ["LogGroupName"],
    "AWS::CloudWatch::Alarm": ["AlarmName"],
    "AWS::CloudWatch::Dashboard": ["DashboardName"],
    "AWS::Cognito::UserPool": ["UserPoolName"],
    "AWS::WAFv2::WebACL": ["Name"],
    "AWS::Scheduler::Schedule": ["Name"],
    "AWS::Events::Rule": ["Name"],
    "AWS::IAM::Role": ["RoleName"],
    "AWS::SES::ConfigurationSet": ["Name"],
    "AWS::CloudFront::Function": ["Name"],
}
# types whose name is scoped to a parent resource (unique within it, not in the account)
SCOPED_NAMES = {
    "AWS::Cognito::UserPoolClient",  # ClientName, within its user pool
    "AWS::Cognito::UserPoolGroup",  # GroupName, within its user pool
    "AWS::SES::ConfigurationSetEventDestination",  # within its configuration set
}


def _names(stage: str) -> dict[str, tuple[str, str]]:
    """Every AWS name the template gives, resolved for ``stage`` (schedules of functions included)."""
    resolver = Resolver(TEMPLATE, parameters={"Stage": stage})
    for logical in RESOURCES:  # what a name may be built from: the stage and logical ids
        resolver.refs.setdefault(logical, f"{logical}-{stage}")
    out: dict[str, tuple[str, str]] = {}  # where -> (type, name): names are unique per type
    for logical, res in RESOURCES.items():
        props = res.get("Properties", {})
        for prop in NAME_PROPERTIES.get(res.get("Type", ""), []):
            if prop in props:
                out[f"{logical}.{prop}"] = (res["Type"], str(resolver.resolve(props[prop])))
        for event_name, event in (
            (props.get("Events") or {}).items() if res["Type"] in NAME_PROPERTIES else []
        ):
            if event.get("Type") in ("ScheduleV2", "Schedule"):
                name = event.get("Properties", {}).get("Name")
                assert name is not None, f"{logical}.{event_name}: a schedule named after its logical id"
                out[f"{logical}.{event_name}"] = ("AWS::Scheduler::Schedule", str(resolver.resolve(name)))
    return out


def test_every_type_with_a_name_is_known_to_this_check() -> None:
    named = {
        r["Type"] for r in RESOURCES.values() if any(k.endswith("Name") for k in r.get("Properties", {}))
    }
    unknown = named - set(NAME_PROPERTIES) - SCOPED_NAMES - {"AWS::CloudWatch::Alarm"}
    assert not unknown, f"add the naming property of {unknown} to NAME_PROPERTIES"


def test_every_name_includes_the_stage() -> None:
    for where, (_, name) in _names("qa7").items():
        assert "qa7" in name, f"{where} = {name}: not unique per stage"


def test_two_stages_never_collide() -> None:
    dev, prod = _names("dev"), _names("prod")
    assert set(dev.values()).isdisjoint(prod.values())
    assert len(set(dev.values())) == len(dev), "two resources of one stage share a name"


def test_the_table_survives_deletion_but_not_its_own_failed_create() -> None:
    table = RESOURCES["LoyaltyTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


@pytest.mark.parametrize("logical", sorted(FUNCTIONS))
def test_every_function_has_a_log_group_with_retention_and_alarms(logical: str) -> None:
    def of_type(kind: str) -> list[dict[str, Any]]:
        return [r["Properties"] for r in RESOURCES.values() if r["Type"] == kind]

    groups = [
        p
        for p in of_type("AWS::Logs::LogGroup")
        if p["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{logical}}}"}
    ]
    assert len(groups) == 1
    assert groups[0]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    alarmed = {
        p["MetricName"]
        for p in of_type("AWS::CloudWatch::Alarm")
        if p.get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": logical}}]
    }
    assert {"Errors", "Throttles"} <= alarmed
    events = FUNCTIONS[logical]["Properties"].get("Events", {})
    if any(e["Type"] == "DynamoDB" for e in events.values()):
        assert "IteratorAge" in alarmed


def test_every_alarm_notifies_the_topic_and_every_work_queue_has_an_age_alarm() -> None:
    alarms = resources_of(TEMPLATE, "AWS::CloudWatch::Alarm")
    for logical, alarm in alarms.items():
        assert {"Ref": "AlarmTopic"} in alarm["Properties"].get("AlarmActions", []), logical
    aged = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    }
    work = {
        q for q, r in resources_of(TEMPLATE, "AWS::SQS::Queue").items() if "RedrivePolicy" in r["Properties"]
    }
    assert work <= aged


def test_the_dashboard_shows_the_business_metrics_the_code_emits() -> None:
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for metric in ("WebhookEventsAccepted", "PointsRedeemed", "ReservationsCreated", "apply-points"):
        assert metric in body
    for service in ("fanout-notifications", "send-email", "send-sms", "send-push", "send-whatsapp"):
        assert service in body


def test_every_event_source_filter_fits_lambdas_default_quota() -> None:
    """Lambda takes at most 5 filters per event source mapping unless the account's quota is raised:
    a sixth would deploy nowhere but here."""
    template = load()
    sizes = {
        (logical, name): len(event["Properties"]["FilterCriteria"]["Filters"])
        for logical in resources_of(template, "AWS::Serverless::Function")
        for name, event in template["Resources"][logical]["Properties"].get("Events", {}).items()
        if "FilterCriteria" in event.get("Properties", {})
    }
    assert sizes, "no filtered event source found"
    assert {key: n for key, n in sizes.items() if n > 5} == {}
