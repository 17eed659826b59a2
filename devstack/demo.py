"""The scripted demo: one customer's multi-channel journey through the signed webhooks.

Data-driven: ``JOURNEY`` lists the deliveries (files under ``events/webhooks``); what is printed
afterwards is derived from the template: every staff ``GET`` route whose path parameters the
journey can fill (customer ids, SKUs, days, ...) is called, so a capability shows up here as soon
as its API lands in template.yaml. ``--smoke`` turns the run into a pass/fail check.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.stack import LocalStack, StackOptions
from devstack.template import ROOT

WEBHOOKS = ROOT / "events" / "webhooks"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_EPOCH_KEYS = {"timestamp", "ts", "time", "created", "sent_at"}


@dataclass(frozen=True)
class Step:
    sample: str  # file under events/webhooks; its prefix (before "_") is the channel
    story: str
    provider: str | None = None  # a real provider: the sample is events/webhooks/<provider>/<sample>.json
    topic: str | None = None  # the provider's topic header (Shopify, WooCommerce)
    #: sent as an event built at send time (the sample's fields, the time now), not the sample's time
    built_now: bool = False

    @property
    def channel(self) -> str:
        return self.provider or self.sample.split("_", 1)[0]

    def document(self) -> Any:
        folder = WEBHOOKS / self.provider if self.provider else WEBHOOKS
        return json.loads((folder / f"{self.sample}.json").read_text())


#: Ana's journey, in the order it happens. Add a step when a new channel or sample lands.
JOURNEY: tuple[Step, ...] = (
    Step("stock_count_opening_warehouse", "the ERP sends the warehouse's opening stock count"),
    Step("stock_count_opening_store", "... and the Madrid store's"),
    Step("app_sign_up", "Ana installs the app and signs up (email, loyalty card, push opt-in)"),
    Step("app_product_viewed", "she looks at the jacket in the app"),
    Step("email_events", "subscribes to the newsletter, opens and clicks the campaign"),
    Step("web_customer_created", "creates a web shop account (email + phone)"),
    Step("web_order_created", "orders sneakers and socks online"),
    Step("web_order_paid", "... and pays"),
    Step("pos_sale", "buys the jacket and a beanie in the Madrid store with her loyalty card"),
    Step("chat_opt_in", "opts in to WhatsApp"),
    Step("chat_message", "asks on WhatsApp whether the store has her size"),
    Step("chat_order", "orders a scarf on WhatsApp"),
    Step("pos_return", "returns the beanie in store"),
    Step("web_order_refunded", "gets a refund for the socks online"),
    # built now: the sample's 2025 time is older than the consent Ana gave since (latest wins)
    Step("email_unsubscribe", "unsubscribes from the newsletter", built_now=True),
)

#: The same kinds of moments as the providers themselves send them: their own published samples
#: (events/webhooks/<provider>/SOURCES.md), signed as each provider signs. Their customers are the
#: samples' own (jon@doe.ca, john.doe@example.com, ...), not Ana.
PROVIDER_STEPS: tuple[Step, ...] = (
    Step("orders_create", "a Shopify store takes an order", provider="shopify", topic="orders/create"),
    Step("orders_create", "... and Shopify reports it paid", provider="shopify", topic="orders/paid"),
    Step(
        "order_created",
        "a WooCommerce shop takes a paid order",
        provider="woocommerce",
        topic="order.created",
    ),
    Step(
        "customer_created",
        "... and a customer signs up there",
        provider="woocommerce",
        topic="customer.created",
    ),
    Step("text_message", "a customer writes on WhatsApp", provider="whatsapp"),
    Step("order_message", "... and orders from the WhatsApp catalogue", provider="whatsapp"),
    Step("open", "SendGrid reports a campaign opened", provider="sendgrid"),
    Step("click", "... and clicked", provider="sendgrid"),
    Step("bounce", "... a hard bounce", provider="sendgrid"),
    Step("group_unsubscribe", "... and an unsubscribe from a group", provider="sendgrid"),
)


def _times(value: Any, key: str = "") -> list[datetime]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v, key)]
    if isinstance(value, str) and _ISO.match(value):
        parsed = datetime.fromisoformat(value)
        return [parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)]
    if isinstance(value, int) and not isinstance(value, bool) and key in _EPOCH_KEYS and value > 10**9:
        return [datetime.fromtimestamp(value, UTC)]
    return []


def restamp(value: Any, delta: timedelta, key: str = "") -> Any:
    """Shift every timestamp in a delivery by ``delta`` (ISO strings keep their offset style)."""
    if isinstance(value, dict):
        return {k: restamp(v, delta, k) for k, v in value.items()}
    if isinstance(value, list):
        return [restamp(v, delta, key) for v in value]
    if isinstance(value, str) and _ISO.match(value):
        parsed = datetime.fromisoformat(value)
        shifted = (parsed + delta).isoformat()
        if value.endswith("Z"):
            shifted = shifted.replace("+00:00", "Z")
        return shifted
    if isinstance(value, int) and not isinstance(value, bool) and key in _EPOCH_KEYS and value > 10**9:
        return value + int(delta.total_seconds())
    return value


def _fresh(documents: list[tuple[Step, Any]]) -> list[tuple[Step, Any]]:
    times = [t for _, d in documents for t in _times(d)]
    if not times:
        return documents
    delta = datetime.now(UTC) - timedelta(minutes=1) - max(times)
    return [(s, restamp(d, delta)) for s, d in documents]


def built_now(step: Step, now: datetime | None = None) -> Any:
    """The step's email events (SendGrid-shaped) as they would be sent now: the sample's fields with
    ``timestamp`` set to now. The sample file is left as it is."""
    stamp = int((now or datetime.now(UTC)).timestamp())
    return [{**event, "timestamp": stamp} for event in step.document()]


def fresh_journey(steps: tuple[Step, ...] = JOURNEY) -> list[tuple[Step, Any]]:
    """The journey's documents, shifted so its last moment is a minute ago (order kept).

    Our own senders' deliveries shift together (Ana's story keeps its order); each provider
    sample shifts on its own; a ``built_now`` step is an event built with the time now.
    """
    shifted = iter(_fresh([(s, s.document()) for s in steps if s.provider is None and not s.built_now]))
    own = [(s, built_now(s)) if s.built_now else next(shifted) for s in steps if s.provider is None]
    providers = [moment for s in steps if s.provider for moment in _fresh([(s, s.document())])]
    return own + providers


def _event_items(stack: LocalStack) -> list[dict[str, Any]]:
    from loyalty.store.table import deserialize

    ddb = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": stack.table_name}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(deserialize(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _context(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Values the journey can fill path parameters with."""
    events = [i for i in items if i.get("entity") == "event"]
    customers = Counter(str(i["customer_id"]) for i in items if i.get("customer_id"))
    skus: list[str] = []
    for e in events:
        for line in json.loads(e["data"]).get("payload", {}).get("lines", []) or []:
            if line.get("sku") and line["sku"] not in skus:
                skus.append(line["sku"])
    days = sorted({str(e["occurred_at"])[:10] for e in events}, reverse=True)
    profiles = [str(i["customer_id"]) for i in items if i.get("entity") == "profile" and i.get("customer_id")]
    ordered = profiles + [c for c, _ in customers.most_common() if c not in profiles]
    return {
        "customer_id": ordered[:2],
        "customerId": ordered[:2],
        "sku": skus[:2],
        "day": list(dict.fromkeys([datetime.now(UTC).date().isoformat(), *days]))[:2],
        "date": [datetime.now(UTC).date().isoformat()],
        "location_id": ["MAD-SOL"],
        "store_id": ["MAD-SOL"],
        "order_id": ["W-100234"],
    }


def _views(stack: LocalStack, context: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(title, path) for every GET route the journey's data can fill, in template order."""
    out: list[tuple[str, str]] = []
    for route in stack.plan.routes:
        if route.method not in {"GET", "ANY"} or "+}" in route.path or route.path.startswith("/openapi"):
            continue
        names = re.findall(r"\{([^}]+)\}", route.path)
        if any(not context.get(n) for n in names):
            continue
        combos: list[str] = [route.path]
        for name in names:
            combos = [c.replace(f"{{{name}}}", v) for c in combos for v in context[name]]
        out.extend((f"{route.function} {route.path}", path) for path in combos)
    return out


def _print_json(value: Any, max_lines: int = 30) -> None:
    lines = json.dumps(value, indent=2, ensure_ascii=False, default=str).splitlines()
    for line in lines[:max_lines]:
        print(f"    {line}")
    if len(lines) > max_lines:
        print(f"    ... ({len(lines) - max_lines} more lines)")


def _dead_letter_queues(stack: LocalStack) -> list[str]:
    """Every queue that is some queue's DLQ or a stream source's on-failure destination."""
    from devstack.template import resources_of

    dlqs = {s.on_failure for s in stack.plan.streams if s.on_failure}
    for q in resources_of(stack.template, "AWS::SQS::Queue").values():
        target = q.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            dlqs.add(target["Fn::GetAtt"][0])
    return sorted(dlqs)


def play(stack: LocalStack, steps: tuple[Step, ...] = JOURNEY) -> tuple[list[str], list[str]]:
    """Post every delivery; (accepted event ids, problems)."""
    accepted: list[str] = []
    problems: list[str] = []
    for step, document in fresh_journey(steps):
        if step.provider:
            from devstack.sign_events import provider_headers

            raw = json.dumps(document, ensure_ascii=False).encode()
            headers = provider_headers(step.provider, raw, topic=step.topic)
            resp = stack.request("POST", f"/webhooks/{step.provider}", raw, headers)
        else:
            resp = stack.post_webhook(step.channel, document)
        body = resp.json() or {}
        ok = resp.status in (200, 202)
        ids = [a["event_id"] for a in body.get("accepted", [])] if ok else []
        print(f"  -> {step.channel:<6} {step.sample:<22} {resp.status}  {len(ids)} event(s)  {step.story}")
        if step.built_now:
            print(
                f"     ({step.sample}: an event built now from the sample's fields, signed and sent the"
                " same way; the sample's own time is older than Ana's consent and would lose to it)"
            )
        if not ok:
            problems.append(f"{step.sample}: HTTP {resp.status} {body}")
        accepted.extend(ids)
    return accepted, problems


def _report_events(stack: LocalStack, items: list[dict[str, Any]], accepted: list[str]) -> list[str]:
    """Print the event log; the accepted events not recorded, or recorded but never routed."""
    problems: list[str] = []
    events = {str(i["event_id"]): i for i in items if i.get("entity") == "event"}
    print(f"\nEvent log: {len(events)} event(s)")
    for e in sorted(events.values(), key=lambda i: str(i["occurred_at"])):
        who = e.get("customer_id") or "-"
        print(f"  {str(e['occurred_at'])[:19]}  {e['channel']:<6} {e['type']:<22} {e['event_id']:<40} {who}")
    routed = set().union(*(p.delivered_keys for p in stack.stream_pollers)) if stack.stream_pollers else set()
    for event_id in accepted:
        if event_id not in events:
            problems.append(f"event {event_id} was accepted but not recorded")
            continue
        key = json.dumps({"pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}}, sort_keys=True)
        if stack.stream_pollers and key not in routed:
            problems.append(f"event {event_id} was recorded but no stream consumer took it")
    return problems


def _report_queues(stack: LocalStack) -> list[str]:
    """Print every queue's depth and role; a dead-letter queue holding messages is a problem."""
    problems: list[str] = []
    print("\nQueues:")
    consumed = set(stack.plan.consumed_queues())
    dlqs = _dead_letter_queues(stack)
    for logical in stack.plan.queues:
        depth = stack.queue_depth(logical)
        role = "consumed" if logical in consumed else "dead letters" if logical in dlqs else "no consumer yet"
        print(f"  {logical:<24} {depth:>4} message(s)  ({role})")
        if logical in dlqs and depth:
            problems.append(f"{logical} holds {depth} message(s)")
    return problems


def _report_views(stack: LocalStack, items: list[dict[str, Any]]) -> list[str]:
    """Print what the APIs answer about the demo's customer; a 5xx is a problem."""
    problems: list[str] = []
    for title, path in _views(stack, _context(items)):
        resp = stack.api("GET", path, role="customer" if path.startswith("/me") else "admin")
        print(f"\n{title}: GET {path} -> {resp.status}")
        if resp.status >= 300:
            print(f"    {resp.body[:200].decode(errors='replace')}")
            continue
        try:
            _print_json(resp.json())
        except ValueError:
            print(f"    {resp.body[:500]!r}")
        if resp.status >= 500:
            problems.append(f"GET {path} answered {resp.status}")
    return problems


def _report_unsubscribe(stack: LocalStack) -> list[str]:
    """Ana's email consent after her unsubscribe (the journey's last step): it must be refused."""
    (event,) = next(s for s in JOURNEY if s.sample == "email_unsubscribe").document()
    found = stack.api("GET", f"/customers?email={event['email']}")
    customer_id = (found.json() or {}).get("customer_id") if found.status == 200 else None
    profile = stack.api("GET", f"/customers/{customer_id}").json() if customer_id else {}
    consent = (profile or {}).get("consents", {}).get("email")
    print(f"\nAna's email consent after the unsubscribe built now: {consent}")
    if not consent or consent.get("granted") is not False:
        return [f"Ana's email unsubscribe did not take effect: {consent}"]
    return []


def report(stack: LocalStack, accepted: list[str]) -> list[str]:
    """Print what the system knows; return the smoke problems found."""
    items = _event_items(stack)
    problems = _report_events(stack, items, accepted)
    counts = Counter(str(i.get("entity", "?")) for i in items)
    print("\nThe table now holds: " + ", ".join(f"{n} {e}" for e, n in sorted(counts.items())))
    problems += _report_queues(stack)
    problems += _report_views(stack, items)
    problems += _report_unsubscribe(stack)
    errors = Counter(o.function for o in stack.invoker.history if not o.ok or o.failed_items)
    print(f"\nInvocations: {len(stack.invoker.history)}; with failures (retried or DLQ): {dict(errors)}")
    return problems


def run_demo(*, smoke: bool = False, port: int = 0) -> int:
    started = time.perf_counter()
    stack = LocalStack(StackOptions(port=port, retry_delay_s=0.5, schedules=False))
    with stack:
        journey = JOURNEY + PROVIDER_STEPS
        print(
            f"\nPlaying Ana's journey, then the providers' own samples ({len(journey)} deliveries, signed):"
        )
        t0 = time.perf_counter()
        accepted, problems = play(stack, journey)
        stack.wait_quiet(timeout=90)
        print(f"\nPipeline quiet {time.perf_counter() - t0:.1f} s after the first delivery.")
        problems += report(stack, accepted)
    print(f"\nDemo finished in {time.perf_counter() - started:.1f} s.")
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  - {p}")
    if smoke:
        print("SMOKE: " + ("FAILED" if problems else "passed"))
        return 1 if problems else 0
    return 0
