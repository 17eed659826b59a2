"""A realistic mixed workload through the real functions on moto in process, metered per key.

The mix (weights per 100 events, ``MIX``): product views in the app (30, a third of them in a
store), email opens and clicks (14), store sales (12), web orders (10), WhatsApp orders (3) and
messages (6), store returns (3), ERP stock counts (6), click-and-collect reservations (3, API),
points redemptions (2, API). Customers and SKUs are drawn uniformly from populations sized to the
run (``customers = events / 4``, 400 SKUs, 6 stores): entity keys see a realistic few touches each.

Every webhook goes through ``ingest_webhook`` (signed, as API Gateway delivers it), the ingest
queue, ``record_events``, the table's stream (read from moto, filtered as the template's filters
do), ``route_events``, and the identity, stock, points and analytics queues with their consumers,
in batches of the template's ``BatchSize``; reservations and redemptions through ``stock_api`` and
``points_api``. ``Meter`` (bench/meter.py) charges every DynamoDB request to its keys.

Most shoppers are members already: ``ENROLLED`` (90%) of the population signed up in the app
before the day (set-up, not metered: one ``sign_up`` with their email, phone and loyalty card, as
the app sends it), the rest are new and their first order opens a membership. A loyalty
programme's orders come mostly from its members; until 2026-11-30 nobody was enrolled, so 12 of
the cost bench's 30 orders opened a membership (identity's 5 WCU per order were mostly that;
``bench_cost`` still reports that workload as ``orders_nobody_enrolled``).

Shoppers' addresses are ``shopper<n>@mail.test``. Until 2026-11-30 they were ``@example.com``,
which identity's blocklist (``loyalty.identity.policy``) rightly ignores as a placeholder: no web
order and no email open was ever attributed, so none of them reached points or KPIs (19 of 30
orders did in the cost bench). A retailer's web shoppers have real addresses: every order now
goes the whole way, and the per-order figures grew by what those stages cost.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.meter import Meter

MIX = {
    "app_view": 20,
    "app_view_in_store": 10,
    "email_open": 14,
    "pos_sale": 12,
    "web_order": 10,
    "chat_order": 3,
    "chat_message": 6,
    "pos_return": 3,
    "stock_count": 6,
    "reservation": 3,
    "redemption": 2,
}
ORDER_KINDS = ("pos_sale", "web_order", "chat_order")
STORES = ("MAD-SOL", "MAD-GOYA", "BCN-DIAG", "BCN-GRAC", "VLC-COLON", "SEV-SIERPES")
SKUS = 400
COLLECT_SKUS = tuple(f"SKU-{i:04d}" for i in range(0, SKUS, SKUS // 10))  # reservable in every store
QUICK_EVENTS, FULL_EVENTS = 100, 1000
#: share of the population enrolled before the day (members); the others are new customers
ENROLLED = 0.9
DAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# consumer -> (queue logical id, function dir, template logical id, batch size)
CONSUMERS = (
    ("IdentityQueue", "resolve_identity", "ResolveIdentityFunction"),
    ("StockQueue", "apply_stock_events", "ApplyStockEventsFunction"),
    ("PointsQueue", "apply_points", "ApplyPointsFunction"),
    ("AnalyticsQueue", "aggregate_kpis", "AggregateKpisFunction"),
)
FUNCTIONS = (
    "IngestWebhookFunction",
    "RecordEventsFunction",
    "RouteEventsFunction",
    "StockApiFunction",
    "PointsApiFunction",
    *(c[2] for c in CONSUMERS),
)


def _sku(rng: random.Random) -> str:
    return f"SKU-{rng.randrange(SKUS):04d}"


@dataclass
class Person:
    n: int

    @property
    def card(self) -> str:
        return f"7700{self.n:08d}"

    @property
    def email(self) -> str:
        return f"shopper{self.n}@mail.test"

    @property
    def phone(self) -> str:
        return f"+3460{self.n:07d}"

    @property
    def device(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"device-{self.n}"))


def _chat_envelope(seq: int, p: Person, when: str) -> dict[str, Any]:
    """What every message of the chat channel carries (WhatsApp, one conversation per person)."""
    return {
        "message_id": f"wamid.bench{seq}",
        "platform": "whatsapp",
        "conversation_id": f"conv-{p.n}",
        "timestamp": when,
        "from": {"phone": p.phone},
    }


class Workload:
    """Generates the mix's documents; remembers sales so that returns refer to one."""

    def __init__(self, seed: int, customers: int, *, day: datetime = DAY, first_seq: int = 0) -> None:
        self.rng = random.Random(seed)
        self.people = [Person(i) for i in range(customers)]
        self.sales: list[tuple[Person, str, str]] = []
        self.day, self.seq = day, first_seq

    def at(self) -> str:
        self.seq += 1
        return (self.day + timedelta(seconds=self.seq % 86_400)).isoformat()

    def enrolled(self, share: float) -> list[Person]:
        """The members: ``share`` of the population, drawn apart from the day's draws."""
        draw = random.Random(f"enrolled-{len(self.people)}")
        return draw.sample(self.people, round(share * len(self.people)))

    @staticmethod
    def sign_up(p: Person) -> dict[str, Any]:
        """The app's ``sign_up`` of a member, the week before the day (events/webhooks/app_sign_up.json)."""
        return {
            "event_id": f"app-bench-signup-{p.n}",
            "event": "sign_up",
            "timestamp": (DAY - timedelta(days=7, seconds=-p.n)).isoformat(),
            "device": {"id": p.device, "platform": "ios"},
            "user": {"email": p.email, "phone": p.phone, "loyalty_card": p.card, "locale": "es"},
        }

    def webhook(self, kind: str) -> tuple[str, Any]:
        rng, p = self.rng, self.rng.choice(self.people)
        self.seq += 1
        s, when = self.seq, self.at()
        store = rng.choice(STORES)
        if kind in ("app_view", "app_view_in_store"):
            props: dict[str, Any] = {"sku": _sku(rng), "screen": "product_detail"}
            if kind == "app_view_in_store":
                props["store_id"] = store
            return "app", {
                "event_id": f"app-bench-{s}",
                "event": "product_view",
                "timestamp": when,
                "device": {"id": p.device, "platform": "ios"},
                "properties": props,
            }
        if kind == "email_open":
            return "email", [
                {
                    "sg_event_id": f"sg-bench-{s}",
                    "event": rng.choice(("open", "click")),
                    "email": p.email,
                    "timestamp": int(DAY.timestamp()) + s,
                    "campaign_id": "black-friday-2026",
                }
            ]
        lines = [(_sku(rng), rng.randint(1, 2), f"{rng.randint(10, 90)}.{rng.choice(('00', '50', '95'))}")]
        if rng.random() < 0.5:
            lines.append((_sku(rng), 1, "25.00"))
        total = f"{sum(q * float(u) for _, q, u in lines):.2f}"
        if kind == "pos_sale":
            ticket = f"T-B{s:07d}"
            self.sales.append((p, ticket, store))
            return "pos", {
                "ticket_id": ticket,
                "type": "sale",
                "store_id": store,
                "till_id": "1",
                "issued_at": when,
                "currency": "EUR",
                "total": total,
                "payment": {"method": rng.choice(("card", "cash", "card", "mobile"))},
                "loyalty_card": p.card,
                "lines": [
                    {"line_no": i + 1, "sku": sku, "qty": q, "unit_price": u, "family": "apparel"}
                    for i, (sku, q, u) in enumerate(lines)
                ],
            }
        if kind == "pos_return":
            if not self.sales:
                return self.webhook("pos_sale")
            p, ticket, store = self.sales.pop(rng.randrange(len(self.sales)))
            return "pos", {
                "ticket_id": f"T-R{s:07d}",
                "type": "return",
                "store_id": store,
                "till_id": "1",
                "issued_at": when,
                "currency": "EUR",
                "total": "25.00",
                "payment": {"method": "card"},
                "loyalty_card": p.card,
                "original_ticket_id": ticket,
                "lines": [
                    {"line_no": 1, "original_line_no": 1, "sku": _sku(rng), "qty": 1, "unit_price": "25.00"}
                ],
            }
        if kind == "web_order":
            return "web", {
                "id": f"wh_bench_{s}",
                "topic": "orders/paid",
                "created_at": when,
                "data": {
                    "order_id": f"W-B{s:07d}",
                    "customer": {"id": f"shop-{p.n}", "email": p.email},
                    "currency": "EUR",
                    "total_price": total,
                    "gateway": "card",
                    "line_items": [
                        {"id": str(i + 1), "sku": sku, "quantity": q, "price": u, "product_type": "apparel"}
                        for i, (sku, q, u) in enumerate(lines)
                    ],
                    "fulfilment": {"method": "ship", "location_id": "WH-CENTRAL"},
                },
            }
        if kind == "chat_order":
            return "chat", {
                **_chat_envelope(s, p, when),
                "type": "order",
                "order": {
                    "order_id": f"WA-B{s}",
                    "status": "paid",
                    "currency": "EUR",
                    "total": total,
                    "items": [{"sku": sku, "quantity": q, "item_price": u} for sku, q, u in lines],
                    "location_id": store,
                    "fulfilment": "collect",
                    "payment_method": "payment_link",
                },
            }
        if kind == "chat_message":
            return "chat", {
                **_chat_envelope(s, p, when),
                "type": "text",
                "text": {"body": "¿Tenéis la chaqueta M?"},
            }
        if kind == "stock_count":
            return "stock", self.count(store, [_sku(rng)], s)
        raise ValueError(kind)

    @staticmethod
    def count(location: str, skus: list[str], s: int, quantity: int = 40) -> dict[str, Any]:
        return {
            "message_id": f"ERP-CNT-BENCH-{location}-{s}",
            "type": "count",
            "location_id": location,
            "counted_at": (DAY - timedelta(hours=1) + timedelta(seconds=s)).isoformat(),
            "lines": [{"sku": sku, "quantity": quantity} for sku in skus],
        }


class Pipeline:
    """The real handlers wired as the template wires them, pumped until every queue is empty."""

    def __init__(self, resolver: Any, meter: Meter) -> None:
        import boto3

        from devstack.filters import matches_any
        from devstack.template import load
        from loyalty import aws
        from tests.support.lambdas import LambdaContext, load_function

        template = load()["Resources"]
        self.filters = [
            json.loads(f["Pattern"])
            for f in template["RouteEventsFunction"]["Properties"]["Events"]["EventLog"]["Properties"][
                "FilterCriteria"
            ]["Filters"]
        ]
        self.matches_any = matches_any
        self.batch = {
            logical: next(iter(template[logical]["Properties"].get("Events", {}).values()))["Properties"].get(
                "BatchSize", 10
            )
            for logical in ("RecordEventsFunction", "RouteEventsFunction", *(c[2] for c in CONSUMERS))
        }
        self.resolver, self.meter, self.ctx = resolver, meter, LambdaContext()
        self.sqs = boto3.session.Session().client("sqs")  # Lambda's pollers: priced by the cost bench
        self.fn = {name: load_function(name) for name in ("ingest_webhook", "record_events", "route_events")}
        self.fn.update({c[1]: load_function(c[1]) for c in CONSUMERS})
        self.fn["stock_api"] = load_function("stock_api")
        self.fn["points_api"] = load_function("points_api")
        self.streams = aws.client("dynamodbstreams")
        self.stream_arn = aws.client("dynamodb").describe_table(TableName=resolver.refs["LoyaltyTable"])[
            "Table"
        ]["LatestStreamArn"]
        self.iterators: dict[str, str] = {}

    def call(self, logical: str, name: str, event: dict[str, Any]) -> Any:
        with self.meter.invocation(logical, len(event.get("Records", []))):
            return self.fn[name].handler(event, self.ctx)

    def webhook(self, channel: str, document: Any) -> None:
        from tests.support.lambdas import signed_webhook

        result = self.call("IngestWebhookFunction", "ingest_webhook", signed_webhook(channel, document))
        assert result["statusCode"] == 202, result

    def api(self, logical: str, name: str, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call(logical, name, event)
        return result

    def known_customer(self, work: Workload) -> str | None:
        """The customer id of a random person, when identity has created it (an unmetered read)."""
        for p in work.rng.sample(work.people, min(10, len(work.people))):
            for key in (f"IDENT#email#{p.email}", f"IDENT#loyalty_card#{p.card}"):
                item = self.meter.raw_get({"pk": {"S": key}, "sk": {"S": "IDENT"}})
                if item:
                    return str(item["customer_id"]["S"])
        return None

    def _receive(self, queue: str) -> list[dict[str, Any]]:
        url = self.resolver.refs[queue]
        received: list[dict[str, Any]] = []
        while True:
            msgs = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not msgs:
                return received
            received.extend(msgs)
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
            )

    def _consume(self, queue: str, name: str, logical: str) -> int:
        """Deliver a queue's messages (with their attributes) in batches of the template's size."""
        from devstack.lambda_events import sqs_event

        messages = self._receive(queue)
        size, arn = self.batch[logical], f"arn:aws:sqs:eu-west-1:123456789012:{queue}"
        for i in range(0, len(messages), size):
            result = self.call(logical, name, sqs_event(messages[i : i + size], arn, "eu-west-1"))
            assert result == {"batchItemFailures": []}, (logical, result)
        return len(messages)

    def _stream(self) -> list[dict[str, Any]]:
        """New records of the table's stream, in Lambda's shape (Lambda's stream reads are free)."""
        from devstack.lambda_events import stream_record

        out: list[dict[str, Any]] = []
        for sid in self._shard_ids():
            if sid not in self.iterators:
                self.iterators[sid] = self._iterator(sid, "TRIM_HORIZON")
            while True:
                resp = self.streams.get_records(ShardIterator=self.iterators[sid], Limit=1000)
                self.iterators[sid] = resp["NextShardIterator"]
                out.extend(
                    stream_record(r, self.stream_arn, "eu-west-1", ttl_delete=False) for r in resp["Records"]
                )
                if not resp["Records"]:
                    break
        return out

    def skip_stream(self) -> None:
        """Read the stream from now on (the set-up's bulk writes are no traffic)."""
        for sid in self._shard_ids():
            self.iterators[sid] = self._iterator(sid, "LATEST")

    def _shard_ids(self) -> list[str]:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        return [str(shard["ShardId"]) for shard in shards]

    def _iterator(self, shard_id: str, kind: str) -> str:
        found = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=kind
        )
        return str(found["ShardIterator"])

    def pump(self) -> None:
        """Run every stage until nothing is left in flight."""
        while True:
            moved = self._consume("IngestQueue", "record_events", "RecordEventsFunction")
            records = [r for r in self._stream() if self.matches_any(self.filters, r)]
            size = self.batch["RouteEventsFunction"]
            for i in range(0, len(records), size):
                result = self.call("RouteEventsFunction", "route_events", {"Records": records[i : i + size]})
                assert result == {"batchItemFailures": []}, result
            moved += len(records)
            for queue, name, logical in CONSUMERS:
                moved += self._consume(queue, name, logical)
            if not moved:
                return


def run(
    events: int,
    *,
    seed: int = 16,
    kinds: dict[str, int] | None = None,
    pump_every: int = 50,
    enrolled: float = ENROLLED,
    orders_before: int = 0,
) -> tuple[Meter, dict[str, Any]]:
    """Set up (stock, members, spenders, ``orders_before``; not metered), then meter ``events``.

    ``orders_before``: orders the same population placed the day before (the mix's order kinds,
    through the whole pipeline, not metered), so that the metered day is not the programme's
    first: a member's first order in a channel wins a bonus and needs the balance's transaction.
    """
    from bench.common import emulated
    from tests.support.lambdas import http_api_event

    mix = kinds or MIX
    meter = Meter()
    with emulated(*FUNCTIONS) as resolver:
        from loyalty.points.service import PointsService, clear_rules_cache

        clear_rules_cache()
        detach = meter.attach(resolver.refs["LoyaltyTable"])
        try:
            pipe = Pipeline(resolver, meter)
            work = Workload(seed, customers=max(20, events // 4))
            # set-up: every SKU in stock where orders and reservations take it (a retailer sells
            # what it has: an order of stock never counted writes a shortfall and an out-of-stock
            # signal per line), as counts taken the day before; spenders with points
            _stock_everything(resolver.refs["LoyaltyTable"])
            pipe.skip_stream()
            spenders = [f"c_spender{i:04d}" for i in range(max(1, events * mix.get("redemption", 0) // 100))]
            _seed_spenders(PointsService(), spenders)
            members = work.enrolled(enrolled)
            for p in members:
                pipe.webhook("app", work.sign_up(p))
            pipe.pump()
            _orders_before(pipe, work, mix, orders_before, seed)
            meter.reset()
            lines_by_sku: dict[str, int] = {}
            weights = list(mix.values())
            counts: dict[str, int] = dict.fromkeys(mix, 0)
            orders = 0
            for i in range(events):
                (kind,) = work.rng.choices(list(mix), weights=weights)
                customer = pipe.known_customer(work) if kind == "reservation" else None
                if kind == "reservation" and customer is None:
                    kind = "web_order"  # nobody known yet: the first events of a run
                counts[kind] += 1
                if kind == "reservation":
                    body = {
                        "sku": work.rng.choice(COLLECT_SKUS),
                        "quantity": 1,
                        "location_id": work.rng.choice(STORES),
                        "customer_id": customer,
                    }
                    res = pipe.api(
                        "StockApiFunction",
                        "stock_api",
                        http_api_event(
                            "POST",
                            "/reservations",
                            json.dumps(body),
                            {"Idempotency-Key": f"res-{i}"},
                        ),
                    )
                    assert res["statusCode"] == 201, res
                elif kind == "redemption":
                    who = spenders[counts[kind] % len(spenders)]
                    res = pipe.api(
                        "PointsApiFunction",
                        "points_api",
                        http_api_event(
                            "POST",
                            f"/customers/{who}/redemptions",
                            json.dumps({"points": 10, "channel": "pos"}),
                            {"Idempotency-Key": f"rdm-{i}"},
                            path_parameters={"customer_id": who},
                            resource="/customers/{customer_id}/redemptions",
                        ),
                    )
                    assert res["statusCode"] == 201, res
                else:
                    orders += kind in ORDER_KINDS
                    channel, doc = work.webhook(kind)
                    for sku in _skus_of(channel, doc) if kind in ORDER_KINDS else ():
                        lines_by_sku[sku] = lines_by_sku.get(sku, 0) + 1
                    pipe.webhook(channel, doc)
                if (i + 1) % pump_every == 0:
                    pipe.pump()
            pipe.pump()
        finally:
            detach()
    return meter, {
        "events": events,
        "order_events": orders,
        "orders_before_the_day": orders_before,
        "members_before_the_day": len(members),
        "population": len(work.people),
        "mix": counts,
        "order_lines_by_sku": lines_by_sku,
    }


def _orders_before(pipe: Pipeline, work: Workload, mix: dict[str, int], orders: int, seed: int) -> None:
    """``orders`` of the mix's order kinds by the same people the day before (set-up)."""
    kinds = {k: w for k, w in mix.items() if k in ORDER_KINDS}
    if not orders or not kinds:
        return
    before = Workload(seed + 1, len(work.people), day=DAY - timedelta(days=1), first_seq=1_000_000)
    for i in range(orders):
        (kind,) = before.rng.choices(list(kinds), weights=list(kinds.values()))
        pipe.webhook(*before.webhook(kind))
        if (i + 1) % 50 == 0:
            pipe.pump()
    pipe.pump()


def _stock_everything(table_name: str, on_hand: int = 1000) -> None:
    """One stock shard per SKU and order location, as a count before the day leaves it (set-up)."""
    import boto3

    from loyalty.stock import model

    counted = model.stamp(DAY - timedelta(days=1))
    table = boto3.session.Session().resource("dynamodb").Table(table_name)
    with table.batch_writer() as batch:
        for location in (*STORES, "WH-CENTRAL"):
            for n in range(SKUS):
                sku = f"SKU-{n:04d}"
                batch.put_item(
                    Item={
                        "pk": model.sku_pk(sku),
                        "sk": model.shard_sk(location, 0),
                        "entity": model.STOCK_ENTITY,
                        "sku": sku,
                        "location_id": location,
                        "shard": 0,
                        "on_hand": on_hand,
                        "reserved": 0,
                        "available": on_hand,
                        "version": 1,
                        "counted_at": counted,
                        "updated_at": counted,
                    }
                )


def _skus_of(channel: str, doc: Any) -> list[str]:
    if channel == "pos":
        return [line["sku"] for line in doc["lines"]]
    if channel == "web":
        return [line["sku"] for line in doc["data"]["line_items"]]
    return [line["sku"] for line in doc["order"]["items"]]


_RUNS: dict[bool, tuple[Meter, dict[str, Any]]] = {}


def shared_run(quick: bool) -> tuple[Meter, dict[str, Any]]:
    """One metered run per process, shared by the hot-key and the cost benches (run_all)."""
    if quick not in _RUNS:
        _RUNS[quick] = run(QUICK_EVENTS if quick else FULL_EVENTS)
    return _RUNS[quick]


def _seed_spenders(svc: Any, spenders: list[str]) -> None:
    from loyalty.models.events import Channel
    from tests.support.points import order_event

    for c in spenders:
        for k in range(3):
            svc.apply(
                order_event(
                    c,
                    f"T-SPEND-{c}-{k}",
                    [("SKU-0001", 1, "99.50")],
                    channel=Channel.POS,
                    occurred_at=DAY - timedelta(days=40 + k),
                )
            )
