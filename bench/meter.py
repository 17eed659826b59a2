"""Per-key DynamoDB request units, SQS requests and Lambda invocations, measured on the emulator.

``Meter.attach()`` hooks the shared boto3 clients (``loyalty.aws.client``): every DynamoDB request
is charged to the partition keys it touches, by DynamoDB's billing rule (on-demand):

- a write: 1 WCU per KB (rounded up) of the larger of the item's old and new image, on its
  ``pk``; 2 per KB inside a transaction (condition checks included); a write refused by its
  condition still costs 1 WCU (2 per item of a cancelled transaction);
- a GSI write: when the old or new image carries ``gsi1pk``, one more write on that GSI key
  (``gsi1`` projects ALL, so any change to an indexed item rewrites its index entry), and two
  when the key moves (a delete on the old key, a put on the new one);
- a read: 1 RCU per 4 KB (rounded up) strongly consistent, half that eventually consistent;
  a query is charged once for all the items it returns, on its partition key; a transactional
  read costs 2 per 4 KB.

Images are read from the emulator around each write with a separate, unhooked client: the bench
pays that cost, the figures do not include it.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

KB = 1024
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
GSI_KEYS = {"gsi1": ("gsi1pk", "gsi1sk")}


def item_size(item: dict[str, Any] | None) -> int:
    """Bytes of an item in wire format by DynamoDB's sizing rule (names + values, approximately)."""
    if not item:
        return 0
    return sum(len(name) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "B"):
        return len(inner.encode() if isinstance(inner, str) else inner)
    if kind == "N":
        return math.ceil(len(str(inner).lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k) + 1 + _value_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v)) for v in inner)
    return len(str(inner))


def _s(value: Any) -> str:
    return str(value.get("S", value.get("N", "?"))) if isinstance(value, dict) else str(value)


@dataclass
class Meter:
    """Units per partition key (``("table", pk)`` or ``("gsi1", gsi1pk)``) and request counts."""

    wcu: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    rcu: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    ddb_calls: Counter[str] = field(default_factory=Counter)
    sqs_requests: Counter[str] = field(default_factory=Counter)
    invocations: Counter[str] = field(default_factory=Counter)
    cpu_ms: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    aws_calls: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    #: write units per item shape (``SKU#<id> MOVE#<id>#<day>#<id>``), table and GSI together
    wcu_by_item: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: read units per request and key shape (``Query CUST#<id> (gsi1)``)
    rcu_by_item: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: CPU time that is not the function's: the emulator answering a call (in process here, a
    #: server in AWS) and the meter's own book-keeping; ``invocation`` leaves it out
    emulator_cpu_ms: float = 0.0
    _call_started: list[float] = field(default_factory=list)
    _pending: list[tuple[str, dict[str, Any], list[tuple[dict[str, Any], dict[str, Any] | None]]]] = field(
        default_factory=list
    )
    _raw: Any = None
    _table: str = ""

    @property
    def write_units(self) -> float:
        return sum(v for (index, _), v in self.wcu.items())

    @property
    def read_units(self) -> float:
        return sum(self.rcu.values())

    # -- hooks -------------------------------------------------------------------------------------
    def attach(self, table_name: str) -> Callable[[], None]:
        """Start metering the shared clients; returns the function that stops it."""
        import boto3

        from loyalty import aws

        self._table = table_name
        self._raw = boto3.session.Session().client("dynamodb")
        ddb = aws.client("dynamodb").meta.events
        sqs = aws.client("sqs").meta.events
        ddb.register("before-parameter-build.dynamodb", self._before)
        ddb.register("before-call.dynamodb", self._sent)
        ddb.register("after-call.dynamodb", self._after)
        sqs.register("before-call.sqs", self._sent)
        sqs.register("after-call.sqs", self._sqs)

        def detach() -> None:
            ddb.unregister("before-parameter-build.dynamodb", self._before)
            ddb.unregister("before-call.dynamodb", self._sent)
            ddb.unregister("after-call.dynamodb", self._after)
            sqs.unregister("before-call.sqs", self._sent)
            sqs.unregister("after-call.sqs", self._sqs)

        return detach

    def reset(self) -> None:
        for counter in (
            self.wcu,
            self.rcu,
            self.ddb_calls,
            self.sqs_requests,
            self.invocations,
            self.cpu_ms,
            self.aws_calls,
            self.messages,
            self.wcu_by_item,
            self.rcu_by_item,
        ):
            counter.clear()
        self.emulator_cpu_ms = 0.0

    @contextmanager
    def invocation(self, function: str, messages: int = 0) -> Iterator[None]:
        """Count one Lambda invocation of ``function``: its CPU time and the AWS calls it made.

        The CPU time excludes waiting for a core on a busy machine, and every AWS call from the
        moment botocore sends it (``before-call``) to the moment it hands back the parsed answer
        (``after-call``): in process, that is moto doing DynamoDB's and SQS's work, which in AWS
        is done by the service while the function waits on the network. The cost bench prices
        that wait, and the answer's parsing, as ``NETWORK_MS_PER_CALL`` per call. The meter's own
        look-ups are left out too."""
        started, emulator = time.process_time(), self.emulator_cpu_ms
        calls = self.ddb_calls.total() + self.sqs_requests.total()
        try:
            yield
        finally:
            self.invocations[function] += 1
            self.messages[function] += messages
            spent = (time.process_time() - started) * 1000 - (self.emulator_cpu_ms - emulator)
            self.cpu_ms[function] += spent
            self.aws_calls[function] += self.ddb_calls.total() + self.sqs_requests.total() - calls

    def raw_get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """Read an item without metering it (the bench's own look-ups)."""
        return self._image(key)

    def _image(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self._raw.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def _sent(self, **_: Any) -> None:
        self._call_started.append(time.process_time())

    def _returned(self) -> None:
        self.emulator_cpu_ms += (time.process_time() - self._call_started.pop()) * 1000

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        started = time.process_time()
        try:
            self._look_before(params, model)
        finally:
            self.emulator_cpu_ms += (time.process_time() - started) * 1000

    def _look_before(self, params: dict[str, Any], model: Any) -> None:
        op = model.name
        writes: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            key = params.get("Key") or {"pk": params["Item"]["pk"], "sk": params["Item"]["sk"]}
            writes.append((key, self._image(key)))
        elif op == "TransactWriteItems":
            for action in params["TransactItems"]:
                ((_kind, body),) = action.items()
                key = body.get("Key") or {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}
                writes.append((key, self._image(key)))
        self._pending.append((op, params, writes))

    def _after(self, parsed: dict[str, Any], model: Any, http_response: Any, **_: Any) -> None:
        try:
            self._charge(parsed, model, http_response)
        finally:
            self._returned()

    def _charge(self, parsed: dict[str, Any], model: Any, http_response: Any) -> None:
        op, params, writes = self._pending.pop()
        assert op == model.name, (op, model.name)
        self.ddb_calls[op] += 1
        failed = http_response.status_code >= 400
        for write in writes:
            self._charge_write(write, failed, factor=2 if op == "TransactWriteItems" else 1)
        read = {
            "GetItem": self._read_get,
            "BatchGetItem": self._read_batch_get,
            "Query": self._read_query,
            "TransactGetItems": self._read_transact_get,
            "Scan": self._read_scan,
        }.get(op)
        if read is not None and not failed:
            read(params, parsed)

    # -- reads, by operation ------------------------------------------------------------------------
    def _read_get(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        self._charge_read("table", _s(params["Key"]["pk"]), [parsed.get("Item")], params, "GetItem")

    def _read_batch_get(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        responses = parsed.get("Responses", {}).values()
        found = {(_s(i["pk"]), _s(i["sk"])): i for items in responses for i in items}
        for request in params["RequestItems"].values():
            for key in request["Keys"]:
                k = (_s(key["pk"]), _s(key["sk"]))
                self._charge_read("table", k[0], [found.get(k)], request, "BatchGetItem")

    def _read_query(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        values = params.get("ExpressionAttributeValues", {})
        pk = _s(values[":pk"]) if ":pk" in values else "?"
        self._charge_read(params.get("IndexName", "table"), pk, parsed.get("Items", []), params, "Query")

    def _read_transact_get(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        for action, resp in zip(params["TransactItems"], parsed.get("Responses", []), strict=False):
            pk = _s(action["Get"]["Key"]["pk"])
            units = 2 * max(1, math.ceil(item_size(resp.get("Item")) / (4 * KB)))
            self.rcu[("table", pk)] += units
            self.rcu_by_item[f"TransactGetItems {key_family(pk)}"] += units

    def _read_scan(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        self._charge_read("scan", "(scan)", parsed.get("Items", []), params, "Scan")

    def _charge_write(
        self, write: tuple[dict[str, Any], dict[str, Any] | None], failed: bool, *, factor: int
    ) -> None:
        key, old = write
        pk = _s(key["pk"])
        shape = f"{key_family(pk)} {key_family(_s(key['sk']))}"
        if failed:
            self.wcu[("table", pk)] += factor
            self.wcu_by_item[shape] += factor
            return
        new = self._image(key)
        size = max(item_size(old), item_size(new))
        units = factor * max(1, math.ceil(size / KB))
        self.wcu[("table", pk)] += units
        self.wcu_by_item[shape] += units
        for index, (hash_name, _) in GSI_KEYS.items():
            before = _s(old[hash_name]) if old and hash_name in old else None
            after = _s(new[hash_name]) if new and hash_name in new else None
            charges = []
            if before and after and before == after:
                charges.append((after, max(1, math.ceil(item_size(new) / KB))))
            else:
                if before:
                    charges.append((before, max(1, math.ceil(item_size(old) / KB))))
                if after:
                    charges.append((after, max(1, math.ceil(item_size(new) / KB))))
            for gsi_key, gsi_units in charges:
                self.wcu[(index, gsi_key)] += gsi_units
                self.wcu_by_item[f"{shape} ({index})"] += gsi_units

    def _charge_read(
        self,
        index: str,
        pk: str,
        items: list[dict[str, Any] | None],
        params: dict[str, Any],
        op: str,
    ) -> None:
        factor = 1.0 if params.get("ConsistentRead") else 0.5
        size = sum(item_size(i) for i in items)
        units = factor * max(1, math.ceil(size / (4 * KB)))
        self.rcu[(index, pk)] += units
        where = "" if index == "table" else f" ({index})"
        self.rcu_by_item[f"{op} {key_family(pk)}{where}"] += units

    def _sqs(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.sqs_requests[model.name] += 1
        self._returned()

    # -- reports -----------------------------------------------------------------------------------
    def per_key(self, events: int) -> list[dict[str, Any]]:
        """Every key with its units per 1,000 events and the event rate at which it saturates."""
        keys = set(self.wcu) | set(self.rcu)
        rows: list[dict[str, Any]] = []
        for key in keys:
            w, r = self.wcu[key] / events, self.rcu[key] / events
            limit = min(1000 / w if w else math.inf, 3000 / r if r else math.inf)
            rows.append(
                {
                    "index": key[0],
                    "key": key[1],
                    "wcu_per_1000_events": round(w * 1000, 2),
                    "rcu_per_1000_events": round(r * 1000, 2),
                    "saturates_at_events_per_s": round(limit),
                }
            )
        rows.sort(key=lambda row: row["saturates_at_events_per_s"])
        return rows


def key_family(key: str) -> str:
    """``KPI#2026-11-23`` -> ``KPI#<day>``: the key's shape, for grouping a report by pattern."""
    parts = key.split("#")
    out = [parts[0]]
    for part in parts[1:]:
        if _DAY.match(part):
            out.append("<day>")
        elif part.isdigit():
            out.append("<n>")
        else:
            out.append("<id>")
    return "#".join(out)


def grouped(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per key family: how many keys, total and max units per 1,000 events."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"keys": 0, "wcu_per_1000_events": 0.0, "rcu_per_1000_events": 0.0, "hottest_wcu": 0.0}
    )
    for row in rows:
        fam = out[f"{row['index']}:{key_family(row['key'])}"]
        fam["keys"] += 1
        fam["wcu_per_1000_events"] = round(fam["wcu_per_1000_events"] + row["wcu_per_1000_events"], 2)
        fam["rcu_per_1000_events"] = round(fam["rcu_per_1000_events"] + row["rcu_per_1000_events"], 2)
        fam["hottest_wcu"] = max(fam["hottest_wcu"], row["wcu_per_1000_events"])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["wcu_per_1000_events"]))
