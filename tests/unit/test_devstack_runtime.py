"""Warm worker subprocesses behave like a Lambda container: env, context, errors, timeouts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.plan import FunctionPlan
from devstack.runtime import Console, Invoker, Worker

PROBE = """
import os
import time

def handler(event, context):
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
        return {"slept": True}
    if action == "raise":
        raise ValueError("boom")
    if action == "context":
        return {
            "env": dict(os.environ),
            "remaining_ms": context.get_remaining_time_in_millis(),
            "function_name": context.function_name,
            "request_id": context.aws_request_id,
            "cwd": os.getcwd(),
        }
    return {"pid": os.getpid()}
"""


def _invoker(tmp_path: Path, source: str = PROBE, timeout_s: int = 1) -> tuple[Invoker, Worker]:
    code = tmp_path / "fn"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(source)
    fn = FunctionPlan(
        logical_id="Probe",
        handler="app.handler",
        code_uri=code,
        layer_paths=(),
        timeout_s=timeout_s,
        memory_mb=256,
        env={},
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(code),
        "AWS_LAMBDA_FUNCTION_NAME": "Probe",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "FROM_TEMPLATE": "yes",
    }
    worker = Worker(fn, env, tmp_path / "logs" / "Probe.log")
    return Invoker({"Probe": worker}, Console(quiet=True), "eu-west-1", "123456789012"), worker


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[tuple[Invoker, Worker]]:
    invoker, worker = _invoker(tmp_path)
    yield invoker, worker
    worker.kill()


def test_the_handler_runs_with_only_its_own_environment_and_a_lambda_context(
    probe: tuple[Invoker, Worker],
) -> None:
    invoker, worker = probe
    outcome = invoker.invoke("Probe", {"action": "context"}, trigger="test")
    assert outcome.ok, outcome.error
    result = outcome.result
    assert result["env"]["FROM_TEMPLATE"] == "yes"
    assert "PYTEST_CURRENT_TEST" not in result["env"]  # nothing leaks from the devstack's process
    assert result["function_name"] == "Probe"
    assert result["request_id"] == outcome.request_id
    assert 0 < result["remaining_ms"] <= 1000
    assert Path(result["cwd"]) == worker.fn.code_uri


def test_the_worker_stays_warm_between_invocations(probe: tuple[Invoker, Worker]) -> None:
    invoker, worker = probe
    first = invoker.invoke("Probe", {}, trigger="test").result["pid"]
    second = invoker.invoke("Probe", {}, trigger="test").result["pid"]
    assert first == second
    assert worker.starts == 1


def test_an_error_is_reported_with_its_trace_and_the_worker_survives(probe: tuple[Invoker, Worker]) -> None:
    invoker, _ = probe
    before = invoker.invoke("Probe", {}, trigger="test").result["pid"]
    outcome = invoker.invoke("Probe", {"action": "raise"}, trigger="test", items=3)
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error["errorType"] == "ValueError"
    assert "boom" in "".join(outcome.error["stackTrace"])
    assert outcome.failed_items == 3
    assert invoker.invoke("Probe", {}, trigger="test").result["pid"] == before


def test_a_timeout_kills_the_worker_and_the_next_invocation_cold_starts(
    probe: tuple[Invoker, Worker],
) -> None:
    invoker, worker = probe
    before = invoker.invoke("Probe", {}, trigger="test").result["pid"]
    outcome = invoker.invoke("Probe", {"action": "sleep", "seconds": 30}, trigger="test")
    assert not outcome.ok
    assert outcome.timed_out
    assert outcome.ms < 10_000
    after = invoker.invoke("Probe", {}, trigger="test")
    assert after.ok
    assert after.result["pid"] != before
    assert worker.starts == 2


def test_injected_faults_fail_the_next_invocations_only(probe: tuple[Invoker, Worker]) -> None:
    invoker, _ = probe
    invoker.inject_faults("Probe", 2)
    outcomes = [invoker.invoke("Probe", {}, trigger="test") for _ in range(3)]
    assert [o.ok for o in outcomes] == [False, False, True]
    assert outcomes[0].error is not None
    assert "injected fault" in outcomes[0].error["errorMessage"]


def test_an_init_error_is_an_invocation_error(tmp_path: Path) -> None:
    invoker, worker = _invoker(tmp_path, source="import no_such_module\n")
    try:
        outcome = invoker.invoke("Probe", {}, trigger="test")
        assert not outcome.ok
        assert outcome.error is not None
        assert outcome.error["errorType"] == "ModuleNotFoundError"
    finally:
        worker.kill()


def test_history_and_running_count(probe: tuple[Invoker, Worker]) -> None:
    invoker, _ = probe
    invoker.invoke("Probe", {}, trigger="sqs", source="q", items=2, ids=["m1", "m2"])
    last = invoker.history[-1]
    assert (last.function, last.trigger, last.source, last.items, last.ids) == (
        "Probe",
        "sqs",
        "q",
        2,
        ["m1", "m2"],
    )
    assert invoker.running == 0
