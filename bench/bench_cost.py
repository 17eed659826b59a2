"""What the platform costs per million order events, from the counts of one metered run.

Counts come from ``bench/pipeline.py`` run with orders only (store, web and WhatsApp orders: every
stage an order goes through: ingest, event log, stream, router, identity, stock, points, KPIs), and
from the mixed workload of the hot-key bench (per million events of that mix).

The headline figure meters a day of orders that follows a day of as many orders by the same
people (``orders_before``, set-up, not metered): a programme billed at a million orders a month
is not on its first day, and a member's first order in a channel costs more (its bonus changes the
balance in a transaction). The programme's first day (members enrolled, nobody has bought yet;
the headline until 2026-11-30) and a day with nobody enrolled are reported beside it.

Priced:

- DynamoDB request units by DynamoDB's billing rule (``bench/meter.py``);
- SQS requests: every send the functions make, plus Lambda's pollers: one ReceiveMessage and one
  DeleteMessageBatch per 10 messages delivered from a queue (until 2026-11-30 the stream records
  the router reads were charged so too; Lambda's reads of a DynamoDB stream cost nothing);
- Lambda invocations and GB-seconds: the measured CPU time of each invocation plus
  ``NETWORK_MS_PER_CALL`` per AWS call it made, times the template's ``MemorySize`` of the
  function, at the GB-second price of its ``Architectures`` (arm64, Graviton, is 20% cheaper
  than x86_64). moto answers in process, so the CPU it spends answering a call is left out of
  the function's time (``Meter.invocation``): in AWS, DynamoDB and SQS do that work while the
  function waits on the network, which the per-call figure prices (until 2026-11-30 the
  emulator's work was charged to the functions, about half of their measured CPU time);
- API Gateway requests (webhooks and API calls), priced as the HTTP API.

Not counted: storage (see docs/architecture.md), CloudWatch logs and metrics, idle SQS long
polls (a fixed ~$0.25 per queue and month), Secrets Manager reads (cached per container).
"""

from __future__ import annotations

import json
import math
from typing import Any

#: us-east-1, on-demand list prices, as published on 2026-11-30 (one table, in one place)
PRICES_DATE = "2026-11-30"
PRICES = {
    "dynamodb_write_request_unit": 0.625 / 1e6,
    "dynamodb_read_request_unit": 0.125 / 1e6,
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_x86_64": 0.0000166667,
    "lambda_gb_second_arm64": 0.0000133334,
    "sqs_request": 0.40 / 1e6,
    "http_api_request": 1.00 / 1e6,
    "rest_api_request": 3.50 / 1e6,
}
NETWORK_MS_PER_CALL = 6.0
API_FUNCTIONS = ("IngestWebhookFunction", "StockApiFunction", "PointsApiFunction")
#: functions fed by the table's stream: Lambda reads a DynamoDB stream at no request charge
STREAM_FUNCTIONS = ("RouteEventsFunction",)
ORDERS_ONLY = {"pos_sale": 12, "web_order": 10, "chat_order": 3}


def functions() -> dict[str, tuple[int, str]]:
    """Each function's ``MemorySize`` and architecture, as the template sets them (or its Globals)."""
    from devstack.template import function_property, load, resources_of

    template = load()
    return {
        logical: (
            int(function_property(template, logical, "MemorySize", 128)),
            str(function_property(template, logical, "Architectures", ["x86_64"])[0]),
        )
        for logical in resources_of(template, "AWS::Serverless::Function")
    }


def price(meter: Any, per: int) -> dict[str, Any]:
    """Cost of what ``meter`` counted, scaled to a million of ``per`` events, with its breakdown."""
    scale = 1e6 / per
    config = functions()
    gb_s = {
        fn: (meter.cpu_ms[fn] + NETWORK_MS_PER_CALL * meter.aws_calls[fn]) / 1000 * config[fn][0] / 1024
        for fn in meter.invocations
    }
    compute_usd = sum(v * PRICES[f"lambda_gb_second_{config[fn][1]}"] for fn, v in gb_s.items()) * scale
    pollers = sum(
        2 * math.ceil(meter.messages[fn] / 10)
        for fn in meter.invocations
        if meter.messages[fn] and fn not in STREAM_FUNCTIONS
    )
    sends = meter.sqs_requests.total()
    api = sum(meter.invocations[fn] for fn in API_FUNCTIONS)
    counts = {
        "dynamodb_write_units": meter.write_units * scale,
        "dynamodb_read_units": meter.read_units * scale,
        "sqs_requests": (sends + pollers) * scale,
        "lambda_invocations": meter.invocations.total() * scale,
        "lambda_gb_seconds": sum(gb_s.values()) * scale,
        "api_requests": api * scale,
    }
    usd = {
        "dynamodb_writes": counts["dynamodb_write_units"] * PRICES["dynamodb_write_request_unit"],
        "dynamodb_reads": counts["dynamodb_read_units"] * PRICES["dynamodb_read_request_unit"],
        "sqs": counts["sqs_requests"] * PRICES["sqs_request"],
        "lambda_requests": counts["lambda_invocations"] * PRICES["lambda_request"],
        "lambda_compute": compute_usd,
        "api_gateway_http_api": counts["api_requests"] * PRICES["http_api_request"],
    }
    return {
        "usd": round(sum(usd.values()), 2),
        "usd_breakdown": {k: round(v, 2) for k, v in usd.items()},
        "counts": {k: round(v) for k, v in counts.items()},
        "per_event": {
            "write_units": round(meter.write_units / per, 2),
            "read_units": round(meter.read_units / per, 2),
            "invocations": round(meter.invocations.total() / per, 3),
        },
        "wcu_by_item_per_event": {
            shape: round(units / per, 2)
            for shape, units in sorted(meter.wcu_by_item.items(), key=lambda kv: -kv[1])
        },
        "rcu_by_request_per_event": {
            shape: round(units / per, 2)
            for shape, units in sorted(meter.rcu_by_item.items(), key=lambda kv: -kv[1])
        },
        "invocations_by_function": dict(meter.invocations),
        "gb_seconds_by_function_per_event": {fn: round(v / per, 5) for fn, v in sorted(gb_s.items())},
        "architectures": sorted({config[fn][1] for fn in meter.invocations}),
        "rest_api_instead_would_add_usd": round(counts["api_requests"] * (3.50 - 1.00) / 1e6, 2),
    }


def monthly(usd_per_million_orders: float) -> dict[str, float]:
    return {
        f"{n:,} orders": round(usd_per_million_orders * n / 1e6, 2) for n in (100_000, 1_000_000, 10_000_000)
    }


def main(quick: bool = True) -> dict[str, Any]:
    from bench import pipeline

    orders = 30 if quick else 300
    # the metered day follows a day of the same number of orders by the same people (not the
    # programme's first day: a member's first order in a channel wins a bonus, in a transaction)
    meter, info = pipeline.run(orders, kinds=ORDERS_ONLY, orders_before=orders)
    per_order = price(meter, info["order_events"])
    # the programme's first day: members enrolled, none has bought yet (until 2026-11-30 the
    # headline figure), for comparison
    first_meter, first_info = pipeline.run(orders, kinds=ORDERS_ONLY)
    first_day = price(first_meter, first_info["order_events"])
    # the same orders with nobody enrolled before the day: every person's first order opens a
    # membership (the workload of this bench until 2026-11-30), for comparison
    cold_meter, cold_info = pipeline.run(orders, kinds=ORDERS_ONLY, enrolled=0.0)
    nobody_enrolled = price(cold_meter, cold_info["order_events"])
    mixed_meter, mixed_info = pipeline.shared_run(quick)
    mixed = price(mixed_meter, mixed_info["events"])
    return {
        "usd_per_million_order_events": per_order["usd"],
        "orders": per_order,
        "members_before_the_day": f"{info['members_before_the_day']} of {info['population']}",
        "orders_before_the_day": info["orders_before_the_day"],
        "usd_per_million_order_events_first_day": first_day["usd"],
        "orders_first_day": {
            key: first_day[key] for key in ("usd_breakdown", "per_event", "wcu_by_item_per_event")
        },
        "usd_per_million_order_events_nobody_enrolled": nobody_enrolled["usd"],
        "orders_nobody_enrolled": {
            key: nobody_enrolled[key] for key in ("usd_breakdown", "per_event", "wcu_by_item_per_event")
        },
        "usd_per_million_mixed_events": mixed["usd"],
        "mixed": mixed,
        "monthly_usd_orders_only": monthly(per_order["usd"]),
        "prices": {"date": PRICES_DATE, "region": "us-east-1", "mode": "on-demand", **PRICES},
        "network_ms_per_aws_call": NETWORK_MS_PER_CALL,
        "order_events": info["order_events"],
        "mixed_events": mixed_info["events"],
    }


if __name__ == "__main__":
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root), str(root / "layers/loyalty")]
    print(json.dumps(main(quick="--full" not in sys.argv), indent=2))
