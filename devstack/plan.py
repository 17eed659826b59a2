"""The wiring plan: what the local stack runs, derived from template.yaml and nothing else.

Every function becomes a worker; every event source becomes a route, a poller or a schedule.
Anything the devstack cannot run (an unknown event type, a source outside the template, a filter
operator it does not implement) raises ``Unsupported`` here, so the wiring test fails until the
devstack learns it, instead of the local stack silently ignoring part of the system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.filters import validate_pattern
from devstack.schedule import parse_expression
from devstack.template import ROOT, Resolver, function_environment, function_property, resources_of

FUNCTION = "AWS::Serverless::Function"
REST_API = "AWS::Serverless::Api"
HTTP_API = "AWS::Serverless::HttpApi"
LAYER = "AWS::Serverless::LayerVersion"

#: Event source types the devstack runs (SAM ``Events`` ``Type``).
SUPPORTED_EVENTS = frozenset({"Api", "HttpApi", "SQS", "DynamoDB", "Schedule", "ScheduleV2"})


class Unsupported(Exception):
    """The template declares something the local stack cannot run."""


@dataclass(frozen=True)
class ApiRoute:
    function: str
    event: str
    api: str
    path: str
    method: str  # upper case, or "ANY"
    auth: str | None  # authorizer name ("AWS_IAM", ...) or None
    payload: str = "1.0"  # proxy event format: 1.0 (REST Api) or 2.0 (HttpApi's default)


@dataclass(frozen=True)
class SqsSource:
    function: str
    event: str
    queue: str  # logical id
    batch_size: int
    window_s: int
    report_failures: bool
    filters: tuple[str, ...] = ()  # JSON patterns


@dataclass(frozen=True)
class StreamSource:
    function: str
    event: str
    table: str  # logical id
    starting_position: str
    batch_size: int
    window_s: int
    bisect: bool
    max_retries: int  # -1: until the record expires (Lambda's default)
    max_record_age_s: int  # -1: no limit
    report_failures: bool
    on_failure: str | None  # logical id of the destination queue
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleSource:
    function: str
    event: str
    kind: str  # Schedule | ScheduleV2
    expression: str
    enabled: bool
    input: str | None  # JSON text the target receives instead of the scheduled event


@dataclass
class FunctionPlan:
    logical_id: str
    handler: str
    code_uri: Path
    layer_paths: tuple[Path, ...]
    timeout_s: int
    memory_mb: int
    env: dict[str, Any]  # unresolved (intrinsics kept); see ``Plan.environment``
    events: list[str] = field(default_factory=list)


@dataclass
class Plan:
    functions: dict[str, FunctionPlan]
    routes: list[ApiRoute]
    sqs: list[SqsSource]
    streams: list[StreamSource]
    schedules: list[ScheduleSource]
    queues: list[str]
    tables: list[str]

    def environment(self, resolver: Resolver, function: str) -> dict[str, str]:
        """The function's variables resolved against the provisioned local resources."""
        env = resolver.resolve(self.functions[function].env)
        return {k: str(v) for k, v in env.items()}

    def consumed_queues(self) -> list[str]:
        return sorted({s.queue for s in self.sqs})

    def wired(self) -> set[tuple[str, str]]:
        """(function, event name) of every event source the plan runs."""
        sources: list[ApiRoute | SqsSource | StreamSource | ScheduleSource] = [
            *self.routes,
            *self.sqs,
            *self.streams,
            *self.schedules,
        ]
        return {(s.function, s.event) for s in sources}


def _logical_of(value: Any, attr: str, what: str) -> str:
    """``!GetAtt X.<attr>`` -> X; anything else (a literal ARN) is outside the local stack."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical, got = value["Fn::GetAtt"]
        if got == attr:
            return str(logical)
    raise Unsupported(f"{what}: expected !GetAtt <resource>.{attr} of a template resource, got {value!r}")


def _ref_of(value: Any) -> str | None:
    return str(value["Ref"]) if isinstance(value, dict) and "Ref" in value else None


def _filters(props: dict[str, Any], where: str) -> tuple[str, ...]:
    patterns = []
    for spec in props.get("FilterCriteria", {}).get("Filters", []):
        raw = spec["Pattern"]
        text = raw if isinstance(raw, str) else json.dumps(raw)
        try:
            validate_pattern(json.loads(text))
        except ValueError as err:
            raise Unsupported(f"{where}: filter pattern {text}: {err}") from None
        patterns.append(text)
    return tuple(patterns)


def _layer_paths(template: dict[str, Any], logical: str) -> tuple[Path, ...]:
    layers = resources_of(template, LAYER)
    paths = []
    for ref in function_property(template, logical, "Layers", []) or []:
        name = _ref_of(ref)
        if name is None or name not in layers:
            raise Unsupported(f"{logical}: layer {ref!r} is not a layer of this template")
        paths.append(ROOT / str(layers[name]["Properties"]["ContentUri"]))
    return tuple(paths)


def _api_auth(template: dict[str, Any], api: str, props: dict[str, Any]) -> str | None:
    auth = props.get("Auth", {}).get("Authorizer")
    if auth is None:
        api_res = template.get("Resources", {}).get(api, {})
        auth = api_res.get("Properties", {}).get("Auth", {}).get("DefaultAuthorizer")
    if auth is None or auth == "NONE":
        return None
    return str(auth)


def build_plan(template: dict[str, Any]) -> Plan:
    """Read every function and event source of ``template``; raise ``Unsupported`` on a gap."""
    plan = Plan(
        functions={},
        routes=[],
        sqs=[],
        streams=[],
        schedules=[],
        queues=sorted(resources_of(template, "AWS::SQS::Queue")),
        tables=sorted(resources_of(template, "AWS::DynamoDB::Table")),
    )
    for logical, res in resources_of(template, FUNCTION).items():
        props = res["Properties"]
        runtime = str(function_property(template, logical, "Runtime", ""))
        if not runtime.startswith("python"):
            raise Unsupported(f"{logical}: runtime {runtime!r} (the devstack runs Python functions)")
        if "InlineCode" in props or "CodeUri" not in props:
            raise Unsupported(f"{logical}: needs a local CodeUri")
        plan.functions[logical] = FunctionPlan(
            logical_id=logical,
            handler=str(function_property(template, logical, "Handler")),
            code_uri=ROOT / str(props["CodeUri"]),
            layer_paths=_layer_paths(template, logical),
            timeout_s=int(function_property(template, logical, "Timeout", 3)),
            memory_mb=int(function_property(template, logical, "MemorySize", 128)),
            env=function_environment(template, logical),
        )
        for name, event in props.get("Events", {}).items():
            _add_event(plan, template, logical, name, event)
            plan.functions[logical].events.append(name)
    return plan


def _add_event(plan: Plan, template: dict[str, Any], fn: str, name: str, event: dict[str, Any]) -> None:
    kind = event.get("Type")
    where = f"{fn}.Events.{name}"
    if kind not in SUPPORTED_EVENTS:
        raise Unsupported(f"{where}: event type {kind!r} is not run by the devstack")
    props = event.get("Properties", {})
    if kind in ("Api", "HttpApi"):
        plan.routes.append(_route(template, fn, name, str(kind), props, where))
    elif kind == "SQS":
        plan.sqs.append(_sqs_source(fn, name, props, where))
    elif kind == "DynamoDB":
        plan.streams.append(_stream_source(fn, name, props, where))
    else:
        plan.schedules.append(_schedule_source(fn, name, str(kind), props, where))


def _route(
    template: dict[str, Any], fn: str, name: str, kind: str, props: dict[str, Any], where: str
) -> ApiRoute:
    """A route of a REST API (``Api``, payload 1.0) or an HTTP API (``HttpApi``, 2.0 unless said)."""
    rest = kind == "Api"
    id_key, implicit, resource_type = (
        ("RestApiId", "ServerlessRestApi", REST_API) if rest else ("ApiId", "ServerlessHttpApi", HTTP_API)
    )
    api = _ref_of(props.get(id_key)) or implicit
    if api != implicit and api not in resources_of(template, resource_type):
        raise Unsupported(f"{where}: {id_key} {api!r} is not an {kind} of this template")
    payload = "1.0" if rest else str(props.get("PayloadFormatVersion", "2.0"))
    if payload not in {"1.0", "2.0"}:
        raise Unsupported(f"{where}: PayloadFormatVersion {payload!r}")
    return ApiRoute(
        function=fn,
        event=name,
        api=api,
        path=str(props["Path"] if rest else props.get("Path", "/{proxy+}")),  # no Path: $default route
        method=str(props["Method"] if rest else props.get("Method", "ANY")).upper(),
        auth=_api_auth(template, api, props),
        payload=payload,
    )


def _sqs_source(fn: str, name: str, props: dict[str, Any], where: str) -> SqsSource:
    return SqsSource(
        function=fn,
        event=name,
        queue=_logical_of(props.get("Queue"), "Arn", where),
        batch_size=int(props.get("BatchSize", 10)),
        window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
        report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        filters=_filters(props, where),
    )


def _stream_source(fn: str, name: str, props: dict[str, Any], where: str) -> StreamSource:
    on_failure = props.get("DestinationConfig", {}).get("OnFailure")
    if on_failure and on_failure.get("Type", "SQS") != "SQS":
        raise Unsupported(f"{where}: on-failure destination type {on_failure.get('Type')!r}")
    return StreamSource(
        function=fn,
        event=name,
        table=_logical_of(props.get("Stream"), "StreamArn", where),
        starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
        batch_size=int(props.get("BatchSize", 100)),
        window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
        bisect=bool(props.get("BisectBatchOnFunctionError", False)),
        max_retries=int(props.get("MaximumRetryAttempts", -1)),
        max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
        report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        on_failure=_logical_of(on_failure["Destination"], "Arn", where) if on_failure else None,
        filters=_filters(props, where),
    )


def _schedule_source(fn: str, name: str, kind: str, props: dict[str, Any], where: str) -> ScheduleSource:
    expression = str(props.get("ScheduleExpression") or props.get("Schedule", ""))
    try:
        parse_expression(expression)
    except ValueError as err:
        raise Unsupported(f"{where}: {err}") from None
    enabled = props.get("State", "ENABLED") == "ENABLED" and props.get("Enabled", True) is not False
    raw_input = props.get("Input")
    return ScheduleSource(
        function=fn,
        event=name,
        kind=kind,
        expression=expression,
        enabled=enabled,
        input=raw_input if raw_input is None or isinstance(raw_input, str) else json.dumps(raw_input),
    )
