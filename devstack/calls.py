"""Record every AWS call a function makes, attributed to the function whose handler is running.

A botocore ``before-parameter-build`` hook on every client created in the process (whatever session made
it: ``loyalty.aws``, Powertools, a library) records the signing service, the operation and the
parameters that name a resource. ``tests/support/permissions.py`` checks each record against the
function's policy in the template. In unit tests ``tests/support/lambdas.py`` sets the running
function; on the local stack ``devstack/_worker.py`` does (one function per worker process) and
appends the records to ``$DEVSTACK_CALL_LOG/<function>.jsonl``.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# the parameters that name the resource a call acts on (the rest is data, never recorded)
RESOURCE_PARAMS = (
    "TableName",
    "IndexName",
    "QueueUrl",
    "QueueName",
    "SecretId",
    "Name",
    "TopicArn",
    "TargetArn",
    "PlatformApplicationArn",
    "FromEmailAddress",
    "OriginationIdentity",
    "FunctionName",
    "StreamArn",
)

CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("aws_call_function", default=None)
Sink = Callable[[dict[str, Any]], None]
_sinks: list[Sink] = []
_installed: list[bool] = []
_HOOK_ID = "devstack-call-recorder"
_default: list[str] = []  # a worker process runs one function: its calls from any thread
_lock = threading.Lock()


def call_record(function: str, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """One call: who, which service (IAM prefix) and operation, and the resource-naming params."""
    kept: dict[str, Any] = {k: params[k] for k in RESOURCE_PARAMS if isinstance(params.get(k), str)}
    if isinstance(params.get("RequestItems"), dict):  # BatchGetItem / BatchWriteItem
        kept["RequestItems"] = sorted(params["RequestItems"])
    if isinstance(params.get("TransactItems"), list):  # each item is authorised as its own action
        kept["TransactItems"] = [
            {"Action": action, "TableName": body.get("TableName", "")}
            for item in params["TransactItems"]
            for action, body in item.items()
            if isinstance(body, dict)
        ]
    return {"function": function, "service": service, "operation": operation, "params": kept}


def _before_call(model: Any, params: dict[str, Any], **_: Any) -> None:
    function = CURRENT.get() or (_default[0] if _default else None)
    if function is None:
        return
    service = model.service_model.signing_name or model.service_model.endpoint_prefix
    record = call_record(function, service, model.name, params)
    for sink in list(_sinks):
        sink(record)


def _hooked_create_client(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_client(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        client.meta.events.register(
            "before-parameter-build", _before_call, unique_id="devstack-call-recorder"
        )
        return client

    return create_client


def install(sink: Sink, function: str | None = None) -> None:
    """Record calls to ``sink`` from every botocore client created from now on (idempotent).

    ``function``: attribute every call of the process to it (a devstack worker).
    """
    import botocore.client

    with _lock:
        if not _installed:
            creator = botocore.client.ClientCreator
            creator.create_client = _hooked_create_client(creator.create_client)
            _installed.append(True)
        if sink not in _sinks:
            _sinks.append(sink)
        if function is not None:
            _default[:] = [function]


@contextmanager
def running(function: str) -> Iterator[None]:
    """Attribute the calls made in this block (this thread / task) to ``function``."""
    token = CURRENT.set(function)
    try:
        yield
    finally:
        CURRENT.reset(token)


def file_sink(directory: Path, function: str) -> Sink:
    """Append records as JSON lines to ``<directory>/<function>.jsonl``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{function}.jsonl"
    lock = threading.Lock()

    def sink(record: dict[str, Any]) -> None:
        with lock, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")

    return sink


def read_logs(directory: Path) -> list[dict[str, Any]]:
    """Every record the workers wrote under ``directory``."""
    out: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        out.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return out
