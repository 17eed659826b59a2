"""Two fixes to the emulator so it behaves like DynamoDB where our guarantees depend on it.

1. Per-request atomicity. moto evaluates a condition and applies the write in Python with no lock,
   so two threads can both pass ``attribute_not_exists`` or both spend the last points. DynamoDB
   never allows that. Every DynamoDB request is serialised here (one lock around dispatch), so
   the concurrency tests exercise OUR logic against DynamoDB's semantics, not moto's races.
2. Transaction cost. moto backs up a transaction by deep-copying the whole table once per action,
   so each transaction costs O(table size): the local stack and the tests slowed down as tables
   grew. Here only the items the transaction touches are saved (and the stream's length), and
   restored on cancellation: the same all-or-nothing outcome at O(items in the transaction).

``install()`` is idempotent; the tests, the benchmarks and the devstack call it before use. If a
future moto changes the function this patches, patch 2 is skipped (correct, only slower).
"""

from __future__ import annotations

import copy
import inspect
import textwrap
import threading
from typing import Any

_LOCK = threading.RLock()
_installed = False

_BACKUP = """        original_table_state: dict[str, Table] = {}
        for item in transact_items:
            _, op = next(iter(item.items()))
            table_name = op.get("TableName")
            if table_name and table_name in self.tables:
                original_table_state[table_name] = copy.deepcopy(
                    self.tables[table_name]
                )
"""
_ROLLBACK = """                for table_name in original_table_state:
                    self.tables[table_name] = original_table_state[table_name]
"""
_ROLLBACK_END = """            for table_name in original_table_state:
                self.tables[table_name] = original_table_state[table_name]
"""


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
    """Save the touched items and stream lengths; return a function that restores them."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved = []
    streams: dict[str, int] = {}
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        source = op.get("Key") or op.get("Item") or {}
        if table.hash_key_attr not in source:
            continue
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = DynamoType(source[table.range_key_attr]) if table.range_key_attr in source else None
        if table.has_range_key and range_key is None:
            continue
        saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        if table.stream_shard is not None:
            streams.setdefault(table.name, len(table.stream_shard.items))

    def restore() -> None:
        for table, hash_key, range_key, before in reversed(saved):
            if range_key is not None:
                if before is None:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = before
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        for name, length in streams.items():
            del backend.tables[name].stream_shard.items[length:]

    return restore


def _patched_transact_write_items() -> Any:
    from moto.dynamodb import models

    source = textwrap.dedent(inspect.getsource(models.DynamoDBBackend.transact_write_items))
    indented = textwrap.indent(source, "    ")
    if not all(part in indented for part in (_BACKUP, _ROLLBACK, _ROLLBACK_END)):
        return None
    patched = (
        indented.replace(_BACKUP, "        _restore = _snapshot(self, transact_items)\n")
        .replace(_ROLLBACK, "                _restore()\n")
        .replace(_ROLLBACK_END, "            _restore()\n")
    )
    namespace: dict[str, Any] = dict(vars(models))
    namespace["_snapshot"] = _snapshot
    exec(compile(textwrap.dedent(patched), models.__file__, "exec"), namespace)  # noqa: S102 - moto's own code
    return namespace["transact_write_items"]


def install() -> None:
    """Apply both patches once per process."""
    global _installed  # noqa: PLW0603 - a process-wide, idempotent switch
    with _LOCK:
        if _installed:
            return
        from moto.dynamodb import models
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action

        def call_action(self: Any) -> Any:
            with _LOCK:
                return original(self)

        setattr(DynamoHandler, "call_action", call_action)  # noqa: B010 - patching a class on purpose
        fast = _patched_transact_write_items()
        if fast is not None:
            setattr(models.DynamoDBBackend, "transact_write_items", fast)  # noqa: B010
        _installed = True
