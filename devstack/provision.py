"""Create the template's stateful resources in the emulator (moto, in process or as a server).

Used by the devstack AND by the tests, so both run against exactly what template.yaml declares.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from devstack.cognito import USER_POOL, provision_pools
from devstack.sns import TOPIC, provision_topics
from devstack.template import ROOT, Resolver, load, resources_of

LOCAL_SECRETS = ROOT / "config" / "local-secrets.json"
LOCAL_PARAMETERS = ROOT / "config" / "local-parameters.json"

TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
SECRET = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type
PARAMETER = "AWS::SSM::Parameter"


def _client(service: str, endpoint_url: str | None, region: str) -> Any:
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url)


def _create_table(ddb: Any, logical: str, props: dict[str, Any], resolver: Resolver) -> None:
    name = resolver.resolve(props["TableName"]) if "TableName" in props else f"{logical}-local"
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    desc = ddb.create_table(**kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    resolver.refs[logical] = name
    resolver.attrs[(logical, "Arn")] = desc["TableArn"]
    if "LatestStreamArn" in desc:
        resolver.attrs[(logical, "StreamArn")] = desc["LatestStreamArn"]


def _create_queue(sqs: Any, logical: str, props: dict[str, Any], resolver: Resolver) -> None:
    name = resolver.resolve(props.get("QueueName", logical))
    attributes: dict[str, str] = {}
    for prop, attr in (
        ("VisibilityTimeout", "VisibilityTimeout"),
        ("MessageRetentionPeriod", "MessageRetentionPeriod"),
    ):
        if prop in props:
            attributes[attr] = str(props[prop])
    if "RedrivePolicy" in props:
        redrive = resolver.resolve(props["RedrivePolicy"])
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                "maxReceiveCount": str(redrive["maxReceiveCount"]),
            }
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    resolver.refs[logical] = url
    resolver.attrs[(logical, "Arn")] = arn
    resolver.attrs[(logical, "QueueName")] = name
    resolver.attrs[(logical, "QueueUrl")] = url


def _queue_order(queues: dict[str, dict[str, Any]]) -> list[str]:
    """Dead-letter queues first, so every redrive target exists when its source is created."""
    return sorted(queues, key=lambda k: "RedrivePolicy" in queues[k].get("Properties", {}))


def local_secrets() -> dict[str, Any]:
    """The local (development-only) webhook secrets: committed, documented, never used in AWS."""
    data: dict[str, Any] = json.loads(LOCAL_SECRETS.read_text())
    return data


def local_parameters() -> dict[str, str]:
    """Template parameter overrides for the local stack and the tests (e.g. Stage=local)."""
    data: dict[str, str] = json.loads(LOCAL_PARAMETERS.read_text())
    return {k: str(v) for k, v in data.items()}


def provision(
    endpoint_url: str | None = None,
    region: str = "eu-west-1",
    template: dict[str, Any] | None = None,
    parameters: dict[str, str] | None = None,
) -> Resolver:
    """Create every table, queue, topic (+ SQS subscriptions), secret, parameter and user pool of the
    template; return the resolver."""
    template = template or load()
    overrides = local_parameters() if parameters is None else parameters
    resolver = Resolver(template, region=region, parameters=dict(overrides))
    ddb = _client("dynamodb", endpoint_url, region)
    sqs = _client("sqs", endpoint_url, region)
    for logical, res in resources_of(template, TABLE).items():
        _create_table(ddb, logical, res["Properties"], resolver)
    queues = resources_of(template, QUEUE)
    for logical in _queue_order(queues):
        _create_queue(sqs, logical, queues[logical].get("Properties", {}), resolver)
    if resources_of(template, TOPIC):  # after the queues: the subscriptions deliver to them
        provision_topics(_client("sns", endpoint_url, region), template, resolver)
    secrets = resources_of(template, SECRET)
    if secrets:
        sm = _client("secretsmanager", endpoint_url, region)
        for logical, res in secrets.items():
            name = resolver.resolve(res["Properties"].get("Name", logical))
            arn = sm.create_secret(Name=name, SecretString=json.dumps(local_secrets()))["ARN"]
            resolver.refs[logical] = arn
            resolver.attrs[(logical, "Id")] = arn
    params = resources_of(template, PARAMETER)
    if params:
        ssm = _client("ssm", endpoint_url, region)
        for logical, res in params.items():
            props = resolver.resolve(res["Properties"])
            ssm.put_parameter(Name=props["Name"], Value=str(props["Value"]), Type=props.get("Type", "String"))
            resolver.refs[logical] = props["Name"]
    if resources_of(template, USER_POOL):
        provision_pools(_client("cognito-idp", endpoint_url, region), template, resolver)
    for logical in resources_of(template, "AWS::Serverless::LayerVersion"):
        resolver.refs[logical] = f"arn:aws:lambda:{region}:{resolver.account}:layer:{logical}:1"
    for kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi"):
        for logical in resources_of(template, kind):
            resolver.refs[logical] = logical
    for logical in resources_of(template, "AWS::Serverless::Function"):
        resolver.refs[logical] = logical
        resolver.attrs[(logical, "Arn")] = f"arn:aws:lambda:{region}:{resolver.account}:function:{logical}"
    return resolver


def function_env(resolver: Resolver, logical_id: str) -> dict[str, str]:
    """The resolved environment of one function, as Lambda would set it."""
    from devstack.template import function_environment

    env = resolver.resolve(function_environment(resolver.template, logical_id))
    return {k: str(v) for k, v in env.items()}


__all__ = ["function_env", "local_secrets", "provision"]
