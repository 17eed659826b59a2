"""One warm "container" of one function: imports the handler once, then runs invocations.

Run as a script (stdlib only), with the function's own environment, by ``devstack.runtime``:
    python _worker.py <module.attr handler> <request fd> <response fd>
Protocol: JSON lines. The worker writes ``{"ready": true}`` (or the init error) once, then reads
``{"id", "event", "deadline_ms", "function", "fault"}`` and writes ``{"id", "ok", "result"|"error"}``.
stdout/stderr (the function's logs) go wherever the parent sent them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The subset of Lambda's context object that handlers and Powertools use."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        self.function_version = "$LATEST"
        self.invoked_function_arn = request["function_arn"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request["id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "devstack"
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _record_calls() -> None:
    """With ``DEVSTACK_CALL_LOG`` set, record this function's AWS calls (devstack/calls.py)."""
    directory = os.environ.get("DEVSTACK_CALL_LOG")
    if not directory:
        return
    sys.path.append(os.environ["DEVSTACK_ROOT"])
    from pathlib import Path

    from devstack import calls

    function = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    calls.install(calls.file_sink(Path(directory), function), function=function)


def main() -> int:
    handler_path, req_fd, resp_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path.pop(0)  # this script's directory is not on a Lambda's path
    requests = os.fdopen(req_fd, "r", encoding="utf-8")
    responses = os.fdopen(resp_fd, "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        responses.write(json.dumps(message, default=str) + "\n")
        responses.flush()

    try:
        _record_calls()
        module_name, attr = handler_path.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attr)
    except BaseException as exc:
        send({"ready": False, "error": _error(exc)})
        return 1
    send({"ready": True})
    for line in requests:
        request = json.loads(line)
        print(f"START RequestId: {request['id']}", flush=True)
        started = time.perf_counter()
        try:
            if request.get("fault"):
                raise RuntimeError(f"devstack injected fault: {request['fault']}")
            result = handler(request["event"], LambdaContext(request))
            json.dumps(result)  # what Lambda would do: a result must serialise
            reply: dict[str, Any] = {"id": request["id"], "ok": True, "result": result}
        except Exception as exc:
            traceback.print_exception(exc)
            reply = {"id": request["id"], "ok": False, "error": _error(exc)}
        sys.stdout.flush()
        sys.stderr.flush()
        ms = (time.perf_counter() - started) * 1000
        print(f"END RequestId: {request['id']} Duration: {ms:.1f} ms", flush=True)
        send(reply)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
