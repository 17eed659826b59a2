"""Every AWS call a function made, checked against that function's policy in the template.

The policies are expanded by SAM's own translator (``aws-sam-translator``: policy templates such
as ``SQSSendMessagePolicy``, the event sources' managed policies), their intrinsics resolved with
the names the template gives each resource, and each recorded call (``devstack/calls.py``) is
turned into the IAM action(s) and resource ARN(s) AWS would authorise. Generic: every
``AWS::Serverless::Function`` of the template, every service.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devstack import calls
from devstack.provision import local_parameters
from devstack.template import Resolver, load, resources_of

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FUNCTION = "AWS::Serverless::Function"

# AWS managed policies SAM attaches (the translator names them; their documents live in IAM).
MANAGED: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}
    ],
    "AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
        }
    ],
    "service-role/AWSLambdaSQSQueueExecutionRole": [
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]}
    ],
    "service-role/AWSLambdaDynamoDBExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
            ],
        }
    ],
}

# operations IAM authorises under another action
SAME_AS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def offline_resolver(template: dict[str, Any], parameters: dict[str, str] | None = None) -> Resolver:
    """Resolve the template's intrinsics to the names and ARNs its resources get (no emulator)."""
    resolver = Resolver(template, region=REGION, account=ACCOUNT, parameters=dict(parameters or {}))
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    for logical, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        kind = res.get("Type", "")
        resolver.refs[logical] = logical
        try:
            if kind == "AWS::DynamoDB::Table":
                name = resolver.resolve(props.get("TableName", logical))
                resolver.refs[logical] = name
                resolver.attrs[(logical, "Arn")] = arn.format("dynamodb", f"table/{name}")
                resolver.attrs[(logical, "StreamArn")] = arn.format("dynamodb", f"table/{name}/stream/1")
            elif kind == "AWS::SQS::Queue":
                name = resolver.resolve(props.get("QueueName", logical))
                resolver.refs[logical] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
                resolver.attrs[(logical, "QueueName")] = name
                resolver.attrs[(logical, "Arn")] = arn.format("sqs", name)
            elif kind == "AWS::SecretsManager::Secret":
                name = resolver.resolve(props.get("Name", logical))
                resolver.refs[logical] = arn.format("secretsmanager", f"secret:{name}-*")
            elif kind == "AWS::SNS::Topic":
                resolver.refs[logical] = arn.format(
                    "sns", str(resolver.resolve(props.get("TopicName", logical)))
                )
            elif kind == FUNCTION:
                resolver.attrs[(logical, "Arn")] = arn.format("lambda", f"function:{logical}")
        except KeyError:
            continue  # named after something not resolvable offline: keep the logical id
    return resolver


def expanded_policies(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Function logical id -> the Allow statements of its execution role, as SAM deploys them."""
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(template)
    for res in sam["Resources"].values():  # the translator wants S3 locations (sam package's job)
        props = res.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                props[key] = "s3://bucket/key"

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    params = {**{k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}}
    params |= local_parameters()
    cfn = transform(sam, {**params, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}, _NoManagedPolicies())
    resolver = offline_resolver(template, local_parameters())
    out: dict[str, list[dict[str, Any]]] = {}
    for logical, res in resources_of(template, FUNCTION).items():
        role_ref = res["Properties"].get("Role")
        role = cfn["Resources"].get(f"{logical}Role") if role_ref is None else None
        assert role is not None, f"{logical}: an explicit Role is not supported by the permission check"
        statements: list[dict[str, Any]] = []
        for managed in role["Properties"].get("ManagedPolicyArns", []):
            name = str(resolver.resolve(managed)).split(":policy/", 1)[-1]
            assert name in MANAGED, f"{logical}: managed policy {name} unknown to the permission check"
            statements.extend(MANAGED[name])
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                statements.append(resolver.resolve(statement))
        out[logical] = [s for s in statements if s.get("Effect") == "Allow"]
    return out


def _as_list(value: Any) -> list[str]:
    if value is None:
        return ["*"]
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether an Allow statement covers ``action`` on ``resource`` (IAM wildcards)."""
    for s in statements:
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(s.get("Action"))):
            continue
        resources = _as_list(s.get("Resource"))
        if resource == "*" or any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return True
        if resource.endswith("-??????") and any(
            fnmatch.fnmatchcase(resource, r.replace("*", "??????")) for r in resources
        ):
            return True
    return False


def _queue_arn(url_or_name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url_or_name.rstrip('/').rsplit('/', 1)[-1]}"


def _table_arn(name: str, index: str | None = None) -> str:
    base = name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    return f"{base}/index/{index}" if index else base


def _sms_identity(value: str) -> str:
    if value.startswith("arn:"):
        return value
    kind = "pool" if value.startswith("pool-") else "phone-number" if value.startswith("phone-") else "*"
    return f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:{kind}/{value}" if kind != "*" else "*"


def _dynamodb_resources(action: str, p: dict[str, Any]) -> list[tuple[str, str]] | None:
    if "TransactItems" in p:
        return [(f"dynamodb:{TRANSACT[i['Action']]}", _table_arn(i["TableName"])) for i in p["TransactItems"]]
    if "RequestItems" in p:
        return [(action, _table_arn(t)) for t in p["RequestItems"]]
    if "TableName" in p:
        return [(action, _table_arn(p["TableName"], p.get("IndexName")))]
    return None


def _secret_arn(secret: str) -> str:
    return (
        secret
        if secret.startswith("arn:")
        else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-??????"
    )


#: the resource each service's call names (None: the call names none of it: action on "*")
_RESOURCE_OF: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "sqs": lambda p: (
        _queue_arn(p.get("QueueUrl") or p["QueueName"]) if ("QueueUrl" in p or "QueueName" in p) else None
    ),
    "secretsmanager": lambda p: _secret_arn(p["SecretId"]) if "SecretId" in p else None,
    "sns": lambda p: p.get("TargetArn") or p.get("TopicArn") or p.get("PlatformApplicationArn") or "*",
    "ses": lambda p: (
        f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{p['FromEmailAddress']}"
        if "FromEmailAddress" in p
        else None
    ),
    "sms-voice": lambda p: _sms_identity(p["OriginationIdentity"]) if "OriginationIdentity" in p else None,
}


def requests_of(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorises for one recorded call."""
    service, op, p = record["service"], record["operation"], record["params"]
    action = SAME_AS.get(f"{service}:{op}", f"{service}:{op}")
    found = _dynamodb_resources(action, p) if service == "dynamodb" else None
    if found is not None:
        return found
    resource = _RESOURCE_OF[service](p) if service in _RESOURCE_OF else None
    return [(action, resource or "*")]


@dataclass(frozen=True)
class Denied:
    function: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource}"


def check(records: list[dict[str, Any]], policies: dict[str, list[dict[str, Any]]]) -> list[Denied]:
    """Calls no policy allows. A record of ``A|B`` (one code, several functions) needs one of them."""
    denied: set[Denied] = set()
    for record in records:
        candidates = record["function"].split("|")
        for action, resource in requests_of(record):
            unknown = [c for c in candidates if c not in policies]
            assert not unknown, f"calls recorded for {unknown}, not a function of the template"
            if not any(allows(policies[c], action, resource) for c in candidates):
                denied.add(Denied(record["function"], action, resource))
    return sorted(denied, key=str)


# ------------------------------------------------------------------ recording in the test process
_RECORDED: set[str] = set()  # distinct calls, as JSON (a suite makes many thousands)


def _record(record: dict[str, Any]) -> None:
    _RECORDED.add(json.dumps(record, sort_keys=True))


def recorded_calls() -> list[dict[str, Any]]:
    """The distinct calls the handlers loaded by ``tests.support.lambdas`` made in this process."""
    return [json.loads(r) for r in sorted(_RECORDED)]


@functools.cache
def _functions_by_code() -> dict[str, list[str]]:
    template = load()
    out: dict[str, list[str]] = {}
    for logical, res in resources_of(template, FUNCTION).items():
        code = str(res["Properties"].get("CodeUri", "")).rstrip("/").rsplit("/", 1)[-1]
        out.setdefault(code, []).append(logical)
    return out


@functools.cache  # the template once per process: the senders ask on every invocation
def _literal_env(logical: str) -> dict[str, str]:
    env = load()["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
    return {k: str(v) for k, v in env.items() if isinstance(v, str | int) and k != "POWERTOOLS_SERVICE_NAME"}


def function_for(code: str) -> str:
    """The template function(s) running ``functions/<code>``: one code may serve several functions
    (the senders), told apart by their literal environment values; ``A|B`` when still ambiguous."""
    logicals = _functions_by_code().get(code, [])
    assert logicals, f"functions/{code} is no function of the template"
    if len(logicals) > 1:
        matching = [lg for lg in logicals if all(os.environ.get(k) == v for k, v in _literal_env(lg).items())]
        logicals = matching or logicals
    return "|".join(logicals)


def recorded(code: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler``, its AWS calls recorded for the function it is in the template."""
    calls.install(_record)

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        with calls.running(function_for(code)):
            return handler(*args, **kwargs)

    return run
