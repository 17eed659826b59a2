"""Functions run like Lambda: one warm worker subprocess per function, one invocation at a time.

The worker has the function's own environment (template variables resolved to the local
resources, the emulator's endpoint, fake credentials), its CodeUri and layers on the path, and a
Lambda-like context. An invocation that outlives the template's Timeout kills the worker (the
next invocation starts a fresh one, a cold start), exactly the outcome Lambda gives.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

from devstack.plan import FunctionPlan

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
INIT_TIMEOUT_S = 30.0


@dataclass
class Outcome:
    """One invocation as the caller (front door, poller, scheduler) sees it."""

    function: str
    trigger: str
    source: str
    items: int
    ms: float
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    request_id: str = ""
    ids: list[str] = field(default_factory=list)

    @property
    def failed_items(self) -> int:
        if not self.ok:
            return self.items
        if isinstance(self.result, dict):
            return len(self.result.get("batchItemFailures") or [])
        return 0

    def summary(self) -> str:
        if self.timed_out:
            return f"TIMEOUT: {self.error['errorMessage'] if self.error else ''}"
        if not self.ok:
            err = self.error or {}
            first_line = str(err.get("errorMessage", "")).strip().split("\n", 1)[0]
            return f"ERROR {err.get('errorType')}: {first_line}"
        if self.trigger == "api" and isinstance(self.result, dict):
            return f"ok {self.result.get('statusCode')}"
        if self.failed_items:
            return f"partial: {self.failed_items}/{self.items} failed"
        return "ok"


class Console:
    """What the developer sees: one line per invocation, tracebacks of errors."""

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            print(text, file=self.out, flush=True)

    def invocation(self, o: Outcome) -> None:
        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        trigger = f"{o.trigger}:{o.source}" if o.source else o.trigger
        self.line(
            f"{stamp}  {o.function:<28} {trigger:<36} {o.items:>4} items {o.ms:>8.1f} ms  {o.summary()}"
        )
        if o.error and o.error.get("stackTrace"):
            self.line("".join("    " + ln for ln in "".join(o.error["stackTrace"]).splitlines(keepends=True)))


class Worker:
    """The warm container of one function."""

    def __init__(self, fn: FunctionPlan, env: dict[str, str], log_path: Path) -> None:
        self.fn = fn
        self.env = env
        self.log_path = log_path
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self._req: IO[str] | None = None
        self._resp_fd: int | None = None
        self._buffer = b""
        self._ready = False
        self.starts = 0

    def spawn(self) -> None:
        """Start the process (it imports the handler in the background: the cold start)."""
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab" if self.starts else "wb")  # a fresh log per stack run
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, "-u", str(WORKER_SCRIPT), self.fn.handler, str(req_r), str(resp_w)],
                env=self.env,
                cwd=self.fn.code_uri,
                pass_fds=(req_r, resp_w),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to the devstack, which stops workers itself
            )
        finally:
            log.close()
            os.close(req_r)
            os.close(resp_w)
        self._req = os.fdopen(req_w, "w", encoding="utf-8")
        self._resp_fd = resp_r
        self._buffer = b""
        self._ready = False
        self.starts += 1

    def _read_line(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line from the worker; None on timeout; EOFError if it died."""
        assert self._resp_fd is not None
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._resp_fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._resp_fd, 65536)
            if not chunk:
                raise EOFError("the worker exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self._req is not None:
            with contextlib.suppress(OSError):
                self._req.close()
        if self._resp_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._resp_fd)
        self.proc, self._req, self._resp_fd, self._ready = None, None, None, False

    def stop(self) -> None:
        """Close the request pipe (the worker exits at EOF), then make sure it is gone."""
        with self.lock:
            if self._req is not None:
                with contextlib.suppress(OSError):
                    self._req.close()
                self._req = None
            if self.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=2)
            self.kill()

    def invoke(self, event: Any, request_id: str, function_arn: str, fault: str | None) -> dict[str, Any]:
        """Run one invocation (caller holds ``self.lock``); the reply or a synthesized error."""
        if self.proc is None or self.proc.poll() is not None:
            self.kill()
            self.spawn()
        if not self._ready:
            try:
                hello = self._read_line(time.monotonic() + INIT_TIMEOUT_S)
            except EOFError:
                hello = {"ready": False, "error": _synth("Runtime.ExitError", "the worker died during init")}
            if hello is None:
                self.kill()
                return {"ok": False, "error": _synth("Runtime.InitTimeout", "init took too long")}
            if not hello.get("ready"):
                self.kill()
                return {"ok": False, "error": hello.get("error")}
            self._ready = True
        timeout_s = self.fn.timeout_s
        deadline_ms = int(time.time() * 1000) + timeout_s * 1000
        request = {
            "id": request_id,
            "event": event,
            "deadline_ms": deadline_ms,
            "function_arn": function_arn,
            "fault": fault,
        }
        assert self._req is not None
        try:
            self._req.write(json.dumps(request) + "\n")
            self._req.flush()
            reply = self._read_line(time.monotonic() + timeout_s)
        except (EOFError, BrokenPipeError, OSError) as err:
            self.kill()
            return {"ok": False, "error": _synth("Runtime.ExitError", f"the worker died: {err}")}
        if reply is None:
            self.kill()  # Lambda discards the environment of a timed-out invocation
            message = f"Task timed out after {timeout_s:.2f} seconds"
            return {"ok": False, "timed_out": True, "error": _synth("Sandbox.Timedout", message)}
        return reply


def _synth(kind: str, message: str) -> dict[str, Any]:
    return {"errorType": kind, "errorMessage": message, "stackTrace": []}


class Invoker:
    """Invoke functions by logical id; counts running invocations, keeps a history, logs lines."""

    def __init__(self, workers: dict[str, Worker], console: Console, region: str, account: str) -> None:
        self.workers = workers
        self.console = console
        self.region = region
        self.account = account
        self.history: deque[Outcome] = deque(maxlen=5000)
        self._running = 0
        self._lock = threading.Lock()
        self._faults: dict[str, int] = {}

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def inject_faults(self, function: str, times: int) -> None:
        """Make the next ``times`` invocations of ``function`` raise inside the worker."""
        with self._lock:
            self._faults[function] = self._faults.get(function, 0) + times

    def _take_fault(self, function: str) -> str | None:
        with self._lock:
            left = self._faults.get(function, 0)
            if left <= 0:
                return None
            self._faults[function] = left - 1
            return f"{function} ({left - 1} more queued)"

    def function_arn(self, function: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{function}"

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        trigger: str,
        source: str = "",
        items: int = 1,
        ids: list[str] | None = None,
    ) -> Outcome:
        worker = self.workers[function]
        request_id = str(uuid.uuid4())
        with self._lock:
            self._running += 1
        try:
            with worker.lock:
                fault = self._take_fault(function)
                started = time.perf_counter()
                try:
                    reply = worker.invoke(event, request_id, self.function_arn(function), fault)
                except Exception as exc:  # the devstack's own fault: report it like a runtime error
                    reply = {
                        "ok": False,
                        "error": {
                            "errorType": type(exc).__name__,
                            "errorMessage": str(exc),
                            "stackTrace": traceback.format_exception(exc),
                        },
                    }
                ms = (time.perf_counter() - started) * 1000
            outcome = Outcome(
                function=function,
                trigger=trigger,
                source=source,
                items=items,
                ms=ms,
                ok=bool(reply.get("ok")),
                result=reply.get("result"),
                error=reply.get("error"),
                timed_out=bool(reply.get("timed_out")),
                request_id=request_id,
                ids=list(ids or []),
            )
            self.history.append(outcome)
            self.console.invocation(outcome)
            return outcome
        finally:
            with self._lock:
                self._running -= 1
