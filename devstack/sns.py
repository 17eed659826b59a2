"""The template's SNS topics and their SQS subscriptions in the emulator.

SES event publishing and End User Messaging two-way SMS publish to SNS topics that deliver to the
feedback queue (template: ``AWS::SNS::Topic`` + ``AWS::SNS::Subscription`` with ``Protocol: sqs``).
moto's SNS delivers a publish to an SQS subscription of the same moto backend (in process or the
server), so creating them here lets the local stack and the tests publish to the topic exactly as
AWS does, with the subscription's ``RawMessageDelivery`` as the template sets it (absent: false,
the SNS JSON envelope). Subscriptions of other protocols (the alarm e-mail) are not emulated.
"""

from __future__ import annotations

from typing import Any

from devstack.template import Resolver, resources_of

TOPIC = "AWS::SNS::Topic"
SUBSCRIPTION = "AWS::SNS::Subscription"


def provision_topics(sns: Any, template: dict[str, Any], resolver: Resolver) -> None:
    """Create every topic (Ref = its ARN) and every ``sqs`` subscription of ``template``."""
    stage = resolver.parameters.get("Stage", "local")
    for logical, res in resources_of(template, TOPIC).items():
        props = res.get("Properties") or {}
        name = resolver.resolve(props["TopicName"]) if "TopicName" in props else f"{logical}-{stage}"
        arn = sns.create_topic(Name=name)["TopicArn"]
        resolver.refs[logical] = arn
        resolver.attrs[(logical, "TopicArn")] = arn
        resolver.attrs[(logical, "TopicName")] = name
    for logical, res in resources_of(template, SUBSCRIPTION).items():
        props = res.get("Properties") or {}
        if props.get("Protocol") != "sqs":
            continue
        raw = str(resolver.resolve(props.get("RawMessageDelivery", False))).lower() == "true"
        arn = sns.subscribe(
            TopicArn=resolver.resolve(props["TopicArn"]),
            Protocol="sqs",
            Endpoint=resolver.resolve(props["Endpoint"]),
            Attributes={"RawMessageDelivery": "true" if raw else "false"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        resolver.refs[logical] = arn


__all__ = ["provision_topics"]
