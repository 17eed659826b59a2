"""Thin typed access to the one table: serialisation, conditional writes, error mapping.

Items are plain dicts of Python values; numbers come back as ``int`` when integral.
ClientErrors are mapped here and nowhere else: a failed condition becomes ``Conflict``,
throttling and 5xx become ``TransientError`` (retried by the caller's plumbing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from loyalty import aws
from loyalty.errors import Conflict, TransientError
from loyalty.settings import get_settings

_SER = TypeSerializer()
_DESER = TypeDeserializer()

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflict",
    }
)

Item = dict[str, Any]


def _to_ddb(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_ddb(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_ddb(v) for v in value]
    return value


def _from_ddb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_ddb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_ddb(v) for v in value]
    if isinstance(value, set):
        return {_from_ddb(v) for v in value}
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """Python item -> DynamoDB wire format (None values dropped)."""
    return {k: _SER.serialize(_to_ddb(v)) for k, v in item.items() if v is not None}


def deserialize(image: Mapping[str, Any]) -> Item:
    """DynamoDB wire format (an item or a stream image) -> Python item."""
    return {k: _from_ddb(_DESER.deserialize(v)) for k, v in image.items()}


def _values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(_to_ddb(v)) for k, v in values.items()}


@dataclass
class Capacity:
    """Consumed capacity, summed over calls (for benchmarks: request units per business event)."""

    read_units: float = 0.0
    write_units: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    #: writes refused by their condition: DynamoDB bills them (1 WCU per KB) but reports nothing
    failed_writes: int = 0
    #: transactions whose capacity the emulator did not report, computed from the item sizes
    computed_transaction_units: float = 0.0

    def add(self, op: str, consumed: Any) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        for entry in entries:
            self.read_units += float(entry.get("ReadCapacityUnits", 0) or 0)
            self.write_units += float(entry.get("WriteCapacityUnits", 0) or 0)
            if "ReadCapacityUnits" not in entry and "WriteCapacityUnits" not in entry:
                units = float(entry.get("CapacityUnits", 0) or 0)
                if op in {"get_item", "query", "batch_get_item", "transact_get_items"}:
                    self.read_units += units
                else:
                    self.write_units += units


#: Set by benchmarks to collect consumed capacity of every call; ``None`` in production.
CAPACITY: Capacity | None = None


def _size(value: Any) -> int:
    """DynamoDB's item size rule, approximately: attribute names + values in wire format."""
    if isinstance(value, dict):
        return sum(len(k) + _size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_size(v) for v in value) + 3
    return len(str(value))


def transaction_write_units(actions: Sequence[Mapping[str, Any]]) -> float:
    """Billed WCU of a write transaction: 2 per KB (rounded up) of each item it writes or checks."""
    units = 0
    for action in actions:
        ((_kind, body),) = action.items()
        size = _size(body.get("Item") or body.get("Key") or {})
        units += 2 * max(1, -(-size // 1024))
    return float(units)


class TransactionCancelled(Conflict):
    """A transaction whose conditions failed; ``reasons`` holds one code per action (or "None")."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message, code="transaction_cancelled")
        self.reasons = reasons


def _translate(err: ClientError) -> Exception:
    code = err.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return Conflict("condition failed", code="condition_failed")
    if code == "TransactionCanceledException":
        reasons = [r.get("Code", "None") for r in err.response.get("CancellationReasons", [])]
        if any(
            r in {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"} for r in reasons
        ):
            return TransientError(f"transaction raced or throttled: {reasons}")
        return TransactionCancelled(f"transaction cancelled: {reasons}", reasons)
    if code in RETRYABLE_CODES or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
        return TransientError(f"{code}: {err}")
    return err  # type: ignore[no-any-return]


class Table:
    """The one table. Construct with no argument to use ``TABLE_NAME`` from settings."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or get_settings("table_name").table_name

    @property
    def _client(self) -> Any:
        return aws.client("dynamodb")

    def _call(self, op: str, **kwargs: Any) -> Any:
        if CAPACITY is not None:
            kwargs.setdefault("ReturnConsumedCapacity", "TOTAL")
        try:
            response = getattr(self._client, op)(**kwargs)
        except ClientError as err:
            if CAPACITY is not None and op in {
                "put_item",
                "update_item",
                "delete_item",
                "transact_write_items",
            }:
                CAPACITY.failed_writes += 1
            raise _translate(err) from err
        except BotoCoreError as err:  # connection reset, read timeout: retry later
            raise TransientError(str(err)) from err
        if CAPACITY is not None:
            consumed = response.get("ConsumedCapacity")
            if op == "transact_write_items" and not consumed:
                units = transaction_write_units(kwargs["TransactItems"])
                CAPACITY.computed_transaction_units += units
                CAPACITY.write_units += units
            CAPACITY.add(op, consumed)
        return response

    # -- single items -------------------------------------------------------------------------
    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        resp = self._call(
            "get_item", TableName=self.name, Key=serialize({"pk": pk, "sk": sk}), ConsistentRead=consistent
        )
        return deserialize(resp["Item"]) if "Item" in resp else None

    def put(self, item: Mapping[str, Any], **spec: Unpack[Conditions]) -> None:
        self._call("put_item", TableName=self.name, **tx_put(item, **spec)["Put"])

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Put unless an item with the same key exists; False when it did (an idempotent replay)."""
        try:
            self.put(item, condition="attribute_not_exists(pk)")
        except Conflict:
            return False
        return True

    def update(
        self, pk: str, sk: str, expression: str, *, return_values: str = "ALL_NEW", **spec: Unpack[Conditions]
    ) -> Item:
        action = tx_update(pk, sk, expression, **spec)["Update"]
        resp = self._call("update_item", TableName=self.name, ReturnValues=return_values, **action)
        return deserialize(resp.get("Attributes", {}))

    def delete(
        self,
        pk: str,
        sk: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": serialize({"pk": pk, "sk": sk})}
        kwargs.update(_expr(condition, names, values))
        self._call("delete_item", **kwargs)

    # -- collections ----------------------------------------------------------------------------
    def query(
        self,
        pk: str,
        *,
        sk_prefix: str | None = None,
        sk_between: tuple[str, str] | None = None,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start_key: Mapping[str, Any] | None = None,
        consistent: bool = False,
    ) -> tuple[list[Item], Item | None]:
        """One page of a key-condition query; returns (items, last evaluated key or None)."""
        pk_name, sk_name = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
        expr = "#pk = :pk"
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": pk}
        if sk_prefix is not None:
            expr += " AND begins_with(#sk, :sk)"
            names["#sk"] = sk_name
            values[":sk"] = sk_prefix
        elif sk_between is not None:
            expr += " AND #sk BETWEEN :lo AND :hi"
            names["#sk"] = sk_name
            values[":lo"], values[":hi"] = sk_between
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": expr,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _values(values),
            "ScanIndexForward": forward,
        }
        if index is not None:
            kwargs["IndexName"] = index
        elif consistent:
            kwargs["ConsistentRead"] = True
        if limit is not None:
            kwargs["Limit"] = limit
        if start_key:
            kwargs["ExclusiveStartKey"] = serialize(start_key)
        resp = self._call("query", **kwargs)
        items = [deserialize(i) for i in resp.get("Items", [])]
        last = deserialize(resp["LastEvaluatedKey"]) if "LastEvaluatedKey" in resp else None
        return items, last

    def query_all(self, pk: str, **kwargs: Any) -> Iterator[Item]:
        """Every item of a collection (follows pagination)."""
        start: Mapping[str, Any] | None = None
        while True:
            items, start = self.query(pk, start_key=start, **kwargs)
            yield from items
            if start is None:
                return

    def batch_get(self, keys: Sequence[tuple[str, str]], *, consistent: bool = True) -> list[Item]:
        """Get up to any number of items by key (chunks of 100, unprocessed keys retried).

        ``consistent=False`` reads at half the units; only where a conditional write or a later
        consistent read guards the outcome against a stale item.
        """
        out: list[Item] = []
        pending = [serialize({"pk": pk, "sk": sk}) for pk, sk in dict.fromkeys(keys)]
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self.name: {"Keys": chunk, "ConsistentRead": consistent}}
            for _ in range(5):
                resp = self._call("batch_get_item", RequestItems=request)
                out.extend(deserialize(i) for i in resp.get("Responses", {}).get(self.name, []))
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise TransientError("batch_get_item left unprocessed keys")
        return out

    # -- transactions ---------------------------------------------------------------------------
    def transact(self, actions: Sequence[Mapping[str, Any]], *, token: str | None = None) -> None:
        """Run a write transaction built with the ``tx_*`` helpers below (at most 100 actions)."""
        kwargs: dict[str, Any] = {"TransactItems": [self._bind(a) for a in actions]}
        if token:
            kwargs["ClientRequestToken"] = token[:36]
        self._call("transact_write_items", **kwargs)

    def _bind(self, action: Mapping[str, Any]) -> dict[str, Any]:
        ((kind, body),) = action.items()
        return {kind: {"TableName": self.name, **body}}


class Conditions(TypedDict, total=False):
    """A write's condition and the expression attribute names and values it (and the update) use."""

    condition: str | None
    names: Mapping[str, str] | None
    values: Mapping[str, Any] | None


def _expr(
    condition: str | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if condition:
        out["ConditionExpression"] = condition
    if names:
        out["ExpressionAttributeNames"] = dict(names)
    if values:
        out["ExpressionAttributeValues"] = _values(values)
    return out


def tx_put(
    item: Mapping[str, Any],
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {"Put": {"Item": serialize(item), **_expr(condition, names, values)}}


def tx_put_new(item: Mapping[str, Any]) -> dict[str, Any]:
    return tx_put(item, "attribute_not_exists(pk)")


def tx_update(
    pk: str,
    sk: str,
    expression: str,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "Update": {
            "Key": serialize({"pk": pk, "sk": sk}),
            "UpdateExpression": expression,
            **_expr(condition, names, values),
        }
    }


def tx_delete(
    pk: str, sk: str, condition: str | None = None, values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {"Delete": {"Key": serialize({"pk": pk, "sk": sk}), **_expr(condition, None, values)}}


def tx_check(
    pk: str,
    sk: str,
    condition: str,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {"ConditionCheck": {"Key": serialize({"pk": pk, "sk": sk}), **_expr(condition, names, values)}}
