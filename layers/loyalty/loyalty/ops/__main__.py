"""``python -m loyalty.ops``: replay the event log, redrive dead letters; prints a JSON report.

    python -m loyalty.ops --stage prod replay --from 2026-11-30T01:00Z --to 2026-11-30T04:00Z
    python -m loyalty.ops --stage prod replay --event-ids e1 e2
    python -m loyalty.ops --stage prod redrive --all-dlqs          # or: redrive loyalty-prod-points-dlq
    python -m loyalty.ops --stage prod redrive stream-failures     # the windows to replay
    python -m loyalty.ops --stack-name omnichannel-loyalty-prod ...   # the stage from the stack
    python -m loyalty.ops --stage local --endpoint-url http://127.0.0.1:5000 ...   # the local stack

Credentials and region come from the usual AWS environment (profile, SSO, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from loyalty import aws
from loyalty.settings import get_settings

CONCERNS = {
    "IDENTITY_QUEUE_URL": "identity",
    "POINTS_QUEUE_URL": "points",
    "STOCK_QUEUE_URL": "stock",
    "ANALYTICS_QUEUE_URL": "analytics",
    "NOTIFY_FEEDBACK_QUEUE_URL": "notify-feedback",
}


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value}: give a time zone (e.g. 2026-11-30T01:00Z)")
    return parsed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loyalty.ops", description=__doc__.split("\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--stage", help="the deployment stage (resources are named loyalty-<stage>...)")
    where.add_argument("--stack-name", help="read the stage from this CloudFormation stack's outputs")
    p.add_argument("--endpoint-url", help="an emulator (the local stack's moto server)")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    sub = p.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("replay", help="route logged events again (a time window or a list of ids)")
    what = rp.add_mutually_exclusive_group(required=True)
    what.add_argument("--from", dest="start", type=_time, help="window start (occurred_at, ISO 8601)")
    what.add_argument("--event-ids", nargs="+", help="these events")
    rp.add_argument("--to", dest="end", type=_time, help="window end (occurred_at, ISO 8601)")
    rd = sub.add_parser("redrive", help="move dead letters back to their source queue")
    which = rd.add_mutually_exclusive_group(required=True)
    which.add_argument("queue", nargs="?", help="a DLQ name (or stream-failures: print windows to replay)")
    which.add_argument("--all-dlqs", action="store_true")
    rd.add_argument("--delete", action="store_true", help="stream-failures: delete the records once read")
    return p


def _configure(args: argparse.Namespace) -> str:
    """Point boto3 and the settings at the stage's table and queues; the stage."""
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    aws.reset()
    stage = args.stage
    if stage is None:
        stack = aws.client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        stage = outputs["Stage"]
    os.environ["TABLE_NAME"] = f"loyalty-{stage}"
    sqs = aws.client("sqs")
    for variable, concern in CONCERNS.items():
        os.environ[variable] = sqs.get_queue_url(QueueName=f"loyalty-{stage}-{concern}")["QueueUrl"]
    get_settings.cache_clear()
    return str(stage)


def _dlqs(stage: str) -> dict[str, str]:
    """DLQ url -> its source queue url, for every ``loyalty-<stage>-<x>-dlq`` with a ``-<x>`` queue."""
    prefix = f"loyalty-{stage}-"
    urls = aws.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    by_name = {u.rsplit("/", 1)[-1]: u for u in urls}
    return {
        url: by_name[name.removesuffix("-dlq")]
        for name, url in sorted(by_name.items())
        if name.endswith("-dlq") and name.removesuffix("-dlq") in by_name
    }


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run one command; its report."""
    from loyalty.eventlog.store import EventLog
    from loyalty.ops.recover import STREAM_FAILURES, redrive, replay, stream_failure_windows

    args = parser().parse_args(argv)
    stage = _configure(args)
    if args.command == "replay":
        if args.event_ids:
            ids = list(args.event_ids)
        else:
            if args.end is None:
                raise SystemExit("replay --from needs --to")
            ids = list(EventLog().ids_between(args.start, args.end))
        return {"stage": stage, "replay": replay(ids).as_dict()}
    sqs = aws.client("sqs")
    if args.queue == STREAM_FAILURES or (args.queue or "").endswith(f"-{STREAM_FAILURES}"):
        url = sqs.get_queue_url(QueueName=f"loyalty-{stage}-{STREAM_FAILURES}")["QueueUrl"]
        return {"stage": stage, "stream_failures": stream_failure_windows(url, delete=args.delete).as_dict()}
    pairs = _dlqs(stage)
    if not args.all_dlqs:
        name = args.queue if args.queue.startswith(f"loyalty-{stage}-") else f"loyalty-{stage}-{args.queue}"
        name = name if name.endswith("-dlq") else f"{name}-dlq"
        pairs = {u: t for u, t in pairs.items() if u.rsplit("/", 1)[-1] == name}
        if not pairs:
            raise SystemExit(f"{name}: no such dead-letter queue with a source queue in stage {stage}")
    return {"stage": stage, "redrive": [redrive(dlq, target).as_dict() for dlq, target in pairs.items()]}


def main(argv: Sequence[str] | None = None) -> int:
    json.dump(run(argv), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
