"""The local stack wires EVERYTHING template.yaml declares: functions, queues, event sources, env.

These run over whatever the template holds now; a function or an event source the devstack
cannot run makes ``build_plan`` raise, so this file fails until the devstack learns it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devstack.plan import SUPPORTED_EVENTS, Unsupported, build_plan
from devstack.template import Resolver, function_environment, load, resources_of

TEMPLATE = load()
FUNCTIONS = resources_of(TEMPLATE, "AWS::Serverless::Function")
QUEUES = resources_of(TEMPLATE, "AWS::SQS::Queue")


def _events() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (fn, name, event)
        for fn, res in FUNCTIONS.items()
        for name, event in res["Properties"].get("Events", {}).items()
    ]


def test_every_function_becomes_a_worker_with_its_code_and_layers() -> None:
    plan = build_plan(TEMPLATE)
    assert set(plan.functions) == set(FUNCTIONS)
    for logical, fn in plan.functions.items():
        module, _ = fn.handler.rsplit(".", 1)
        assert (fn.code_uri / f"{module.replace('.', '/')}.py").is_file(), logical
        assert fn.layer_paths, f"{logical} has no layer: it could not import loyalty"
        assert all((p / "loyalty").is_dir() for p in fn.layer_paths)
        assert fn.timeout_s >= 1


@pytest.mark.parametrize(("fn", "name", "event"), _events(), ids=[f"{f}.{n}" for f, n, _ in _events()])
def test_every_event_source_is_wired(fn: str, name: str, event: dict[str, Any]) -> None:
    plan = build_plan(TEMPLATE)
    assert event["Type"] in SUPPORTED_EVENTS
    assert (fn, name) in plan.wired()


def test_each_kind_of_source_lands_where_it_runs() -> None:
    plan = build_plan(TEMPLATE)
    declared = {(fn, name): ev["Type"] for fn, name, ev in _events()}
    assert {(r.function, r.event) for r in plan.routes} == {
        k for k, t in declared.items() if t in {"Api", "HttpApi"}
    }
    assert {(s.function, s.event) for s in plan.sqs} == {k for k, t in declared.items() if t == "SQS"}
    assert {(s.function, s.event) for s in plan.streams} == {
        k for k, t in declared.items() if t == "DynamoDB"
    }
    assert {(s.function, s.event) for s in plan.schedules} == {
        k for k, t in declared.items() if t in {"Schedule", "ScheduleV2"}
    }
    for source in plan.sqs:
        assert source.queue in QUEUES
    for stream in plan.streams:
        table = TEMPLATE["Resources"][stream.table]["Properties"]
        assert table.get("StreamSpecification"), f"{stream.table} has no stream for {stream.function}"
        assert stream.on_failure is None or stream.on_failure in QUEUES


def test_every_queue_is_provisioned_and_every_env_var_resolves(stack: Resolver) -> None:
    plan = build_plan(TEMPLATE)
    assert set(plan.queues) == set(QUEUES)
    parameters = set(TEMPLATE.get("Parameters", {}))
    for logical in QUEUES:
        assert stack.refs[logical], f"{logical} was not created"
    for logical in FUNCTIONS:
        declared = function_environment(TEMPLATE, logical)
        env = plan.environment(stack, logical)  # raises KeyError on anything not provisioned
        assert set(env) == set(declared), logical
        for key, value in env.items():
            ref = declared[key].get("Ref") if isinstance(declared[key], dict) else None
            # only a template parameter may legitimately resolve to "" (an empty default)
            assert value != "" or ref in parameters or declared[key] == "", f"{logical}.{key} is empty"


def _with_function(events: dict[str, Any], **props: Any) -> dict[str, Any]:
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["NewFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "functions/record_events/",
            "Handler": "app.handler",
            "Events": events,
            **props,
        },
    }
    return template


def test_a_new_function_is_planned_without_any_devstack_change() -> None:
    queue = next(iter(QUEUES))
    plan = build_plan(
        _with_function({"Q": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": [queue, "Arn"]}}}})
    )
    assert "NewFunction" in plan.functions
    assert ("NewFunction", "Q") in plan.wired()


@pytest.mark.parametrize(
    "event",
    [
        {"Type": "Kinesis", "Properties": {"Stream": "arn:aws:kinesis:eu-west-1:1:stream/x"}},
        {"Type": "SNS", "Properties": {"Topic": "arn:aws:sns:eu-west-1:1:t"}},
        {"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:eu-west-1:123456789012:elsewhere"}},
        {"Type": "DynamoDB", "Properties": {"Stream": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x"}},
        {
            "Type": "DynamoDB",
            "Properties": {
                "Stream": {"Fn::GetAtt": ["LoyaltyTable", "StreamArn"]},
                "FilterCriteria": {
                    "Filters": [{"Pattern": '{"dynamodb": {"Keys": [{"cidr": "10.0.0.0/8"}]}}'}]
                },
            },
        },
        {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "every tuesday"}},
        {"Type": "Api", "Properties": {"RestApiId": {"Ref": "NoSuchApi"}, "Path": "/x", "Method": "GET"}},
    ],
    ids=[
        "kinesis",
        "sns",
        "foreign-queue",
        "foreign-stream",
        "unknown-filter-operator",
        "bad-schedule",
        "unknown-api",
    ],
)
def test_what_the_devstack_cannot_run_fails_the_plan(event: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        build_plan(_with_function({"E": event}))


def test_a_non_python_runtime_fails_the_plan() -> None:
    with pytest.raises(Unsupported, match="runtime"):
        build_plan(_with_function({}, Runtime="nodejs22.x"))


def test_staff_routes_carry_their_authorizer() -> None:
    plan = build_plan(TEMPLATE)
    for fn, name, event in _events():
        if event["Type"] != "Api":
            continue
        route = next(r for r in plan.routes if (r.function, r.event) == (fn, name))
        declared = event["Properties"].get("Auth", {}).get("Authorizer")
        if declared == "AWS_IAM":
            assert route.auth == "AWS_IAM"
        if declared in {None, "NONE"} and route.api in TEMPLATE["Resources"]:
            default = TEMPLATE["Resources"][route.api]["Properties"].get("Auth", {}).get("DefaultAuthorizer")
            assert route.auth == (None if declared == "NONE" or default in {None, "NONE"} else default)


def test_the_stack_builds_a_loop_per_source_and_gives_workers_the_template_env(stack: Resolver) -> None:
    from devstack.stack import LocalStack, StackOptions

    # Given a (not started) local stack over the resources the template provisioned
    local = LocalStack(StackOptions(quiet=True), template=TEMPLATE)
    local.resolver = stack
    local.moto_url = "http://127.0.0.1:1"
    # When it builds its pollers, sweepers and schedulers
    local.build_loops()
    plan = local.plan
    # Then every event source has its loop, pointed at the provisioned resource
    assert sorted((p.source.function, p.source.event) for p in local.sqs_pollers) == sorted(
        (s.function, s.event) for s in plan.sqs
    )
    for poller in local.sqs_pollers:
        assert poller.queue_url == stack.refs[poller.source.queue]
    assert sorted((p.source.function, p.source.event) for p in local.stream_pollers) == sorted(
        (s.function, s.event) for s in plan.streams
    )
    for stream_poller in local.stream_pollers:
        assert stream_poller.stream_arn == stack.attrs[(stream_poller.source.table, "StreamArn")]
    assert {s.source for s in local.schedulers.values()} == set(plan.schedules)
    ttl_tables = [
        t
        for t in resources_of(TEMPLATE, "AWS::DynamoDB::Table").values()
        if t["Properties"].get("TimeToLiveSpecification")
    ]
    assert len(local.sweepers) == len(ttl_tables)
    # And every worker gets its template variables plus the emulator endpoint and fake credentials
    for logical in FUNCTIONS:
        env = local.runtime_env(logical)
        assert plan.environment(stack, logical).items() <= env.items()
        assert env["AWS_ENDPOINT_URL"] == local.moto_url
        assert env["AWS_ACCESS_KEY_ID"] == "testing"
        assert env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == "disabled"
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == logical
