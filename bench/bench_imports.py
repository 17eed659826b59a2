"""Cold start of every function: its import (init) and init + its first invocation, against the floor.

The floor (``bench/hello_floor``) is a boto3 client + a Powertools Logger hello world: what any
function that talks to DynamoDB must import, and whose first call creates its boto3 client. The
floor and every function are measured in the same run, interleaved (floor, function, floor,
function, ...), so that the machine's load weighs on both alike (budget: ``x_floor`` <= 1.25).

Each handler is imported in a fresh interpreter (as Lambda would on a cold start, with the layer
and the function's code on the path, bytecode compiled beforehand as in a deployed package, the
function's own template Environment), then invoked once with a representative event from
``events/`` (``FIRST_EVENTS``). Its AWS calls go to moto's HTTP server, run by this process: the
child's CPU time counts the function's own work (clients created, requests signed and parsed,
models built, validation) and none of the emulator's. Each run starts from a freshly provisioned
emulator, so every first invocation meets the empty table a new deployment would.

Figures per sample: ``cpu_ms``, the CPU time of ``import app`` (init); ``first_call_ms``, the CPU
time of the first invocation; ``cold_cpu_ms``, the two together; ``import_ms``, the cumulative
wall time of ``app`` by ``-X importtime``. Ratios are the median over runs of each sample over
the floor's sample taken just before it (``x_floor``: init, ``x_floor_first_use``: init + first
invocation; on a shared, loaded machine CPU time barely moves while wall time doubles).
Quick mode (CI) takes 1 sample of each function, full mode (``--full``) 7.

CPU time on a shared machine moves by a third between two samples of the same import.
``--instructions`` (``bench_instructions`` in ``run_all``; needs valgrind, about 3 minutes on 2
cores) counts instead the instructions ``import app`` executes (valgrind's cachegrind, the
interpreter's start-up taken out), for the floor, the libraries' floors and every function: one
run, the same figure each time.

The libraries' floors (``LIBRARIES``): the floor plus what the brief requires of a function of
each trigger beyond it, with one model and one handler of our own: pydantic (a scheduled job's
settings), plus Powertools' batch utility (a queue or stream consumer), or plus Powertools' HTTP
resolver with validation on (an API). Each is measured like a function, next to a floor sample
(``libraries``: their ``x_floor``), 3 times per run. Every function is also set against the
floor of its trigger (``x_libraries``, ``own_cpu_ms``: what its own code adds). A libraries' floor
over the budget (``libraries_over_budget``) is a floor no function of that trigger can go under.
"""

from __future__ import annotations

import argparse
import compileall
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.template import ROOT, load, resources_of

_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)")
HEAVY = (
    "aws_xray_sdk",
    "aws_lambda_powertools.event_handler.openapi",
    "aws_lambda_powertools.utilities.parser",
)
BUDGET = 1.25
EVENTS = ROOT / "events"
#: the libraries' floor of each trigger: its code directory and its first event (``events/``)
LIBRARIES = {
    "pydantic": ("bench/hello_pydantic/", "schedule/points_job.json"),
    "batch": ("bench/hello_batch/", "sqs/apply_points.json"),
    "api": ("bench/hello_api/", "api/points_get.json"),
}
#: a function's libraries' floor, by the type of its template events
TRIGGER_LIBRARIES = {"HttpApi": "api", "SQS": "batch", "DynamoDB": "batch", "ScheduleV2": "pydantic"}
#: the staff pool of the sample events under ``events/api`` (the functions' STAFF_ISSUER here)
SAMPLE_STAFF_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_SAMPLESTAFF"
#: each code directory's first invocation: an event of ``events/`` its trigger delivers
FIRST_EVENTS = {
    "functions/aggregate_kpis/": "sqs/points_order_completed.json",
    "functions/apply_points/": "sqs/apply_points.json",
    "functions/apply_stock_events/": "sqs/apply_stock_events.json",
    "functions/customers_api/": "api/customers_get.json",
    "functions/expire_points/": "schedule/points_job.json",
    "functions/fanout_notifications/": "stream/fanout_notifications.json",
    "functions/ingest_webhook/": "api/webhook_pos_sale.json",  # signed again, now
    "functions/kpis_api/": "api/kpis_daily.json",
    "functions/me_api/": "api/me_get.json",
    "functions/message_feedback/": "sqs/message_feedback_ses_bounce.json",
    "functions/notifications_api/": "api/customer_notifications.json",
    "functions/notify_links/": "api/unsubscribe_one_click.json",
    "functions/points_api/": "api/points_get.json",
    "functions/record_events/": "sqs/record_events.json",
    "functions/release_pending_points/": "schedule/points_job.json",
    "functions/release_reservations/": "schedule/release_reservations.json",
    "functions/resolve_identity/": "sqs/identity_pos_sale.json",
    "functions/review_tiers/": "schedule/points_job.json",
    "functions/route_events/": "stream/route_events_insert.json",
    "functions/send_deferred_notifications/": "schedule/send_deferred_notifications.json",
    "functions/send_notification/": "sqs/send_notification.json",
    "functions/stock_api/": "api/stock_get_sku.json",
    "functions/templates_api/": "api/templates_publish.json",
}

_PROBE = """\
import time
t = time.process_time()
import app
init = time.process_time() - t
import json, os
class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = f"/aws/lambda/{function_name}"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 10_000
with open(os.environ["BENCH_EVENT"]) as f:
    event = json.load(f)
context = Context()
t = time.process_time()
out = app.handler(event, context)
first = time.process_time() - t
if isinstance(out, dict) and "statusCode" in out:
    outcome = str(out["statusCode"])
elif isinstance(out, dict) and "batchItemFailures" in out:
    outcome = f"{len(out['batchItemFailures'])} failed"
else:
    outcome = "ok"
print("@@bench", json.dumps({"init": init * 1000, "first": first * 1000, "outcome": outcome}))
"""


@dataclass
class Sample:
    cpu: float  # ms of CPU in ``import app``
    first: float  # ms of CPU in the first invocation
    wall: float  # ms of wall time of ``import app`` (-X importtime)
    modules: set[str] = field(default_factory=set)
    outcome: str = ""

    @property
    def cold(self) -> float:
        return self.cpu + self.first


def child_env(code_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """A cold start's environment: the function's, the layer and its code on the path, bytecode on."""
    child = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "loyalty"), str(code_dir)]),
    }
    for name in ("POWERTOOLS_TRACE_DISABLED", "PYTHONDONTWRITEBYTECODE"):
        child.pop(name, None)
    return child


def code_dirs(functions: dict[str, Any]) -> dict[str, str]:
    """Code dir -> the (first) function that runs it, whose environment its samples take."""
    by_code: dict[str, str] = {}
    for logical, fn in sorted(functions.items()):
        by_code.setdefault(str(fn["Properties"]["CodeUri"]), logical)
    return by_code


def sample(code_dir: Path, env: dict[str, str], event: Any) -> Sample:
    """One cold start from ``code_dir``: ``import app``, then ``app.handler(event, context)``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(event, f)
    child = {**child_env(code_dir, env), "BENCH_EVENT": f.name}
    try:
        proc = subprocess.run(  # noqa: S603 - this interpreter, a constant probe
            [sys.executable, "-X", "importtime", "-c", _PROBE],
            env=child,
            cwd=code_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        os.unlink(f.name)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("@@bench ")]
    if proc.returncode or not marker:
        raise RuntimeError(f"{code_dir}: {proc.stderr[-2000:]}")
    figures = json.loads(marker[-1].removeprefix("@@bench "))
    modules, wall = set(), None
    for m in _LINE.finditer(proc.stderr):
        modules.add(m.group(3))
        if m.group(3) == "app":
            wall = int(m.group(2)) / 1000
    assert wall is not None, proc.stderr[-500:]
    return Sample(figures["init"], figures["first"], wall, modules, figures["outcome"])


def summary(samples: list[Sample]) -> dict[str, Any]:
    modules = set().union(*(s.modules for s in samples))
    return {
        "cpu_ms": round(statistics.median(s.cpu for s in samples), 1),
        "first_call_ms": round(statistics.median(s.first for s in samples), 1),
        "cold_cpu_ms": round(statistics.median(s.cold for s in samples), 1),
        "import_ms": round(statistics.median(s.wall for s in samples), 1),
        "heavy_modules": sorted(h for h in HEAVY if any(mod.startswith(h) for mod in modules)),
        "modules": len(modules),
        "first_outcomes": sorted({s.outcome for s in samples}),
    }


@contextmanager
def emulator() -> Iterator[str]:
    """moto's HTTP server in this process (its CPU is not the functions'); yields its URL."""
    from moto.server import ThreadedMotoServer

    from devstack import moto_patches
    from devstack.stack import FAKE_CREDENTIALS

    moto_patches.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update({**FAKE_CREDENTIALS, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def environments(url: str, functions: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Reset and provision the emulator; each function's environment (template + runtime)."""
    from devstack.provision import function_env, provision
    from devstack.stack import FAKE_CREDENTIALS

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()  # noqa: S310
    resolver = provision(endpoint_url=url, region="eu-west-1")
    runtime = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    envs = {"floor": {**runtime, "POWERTOOLS_SERVICE_NAME": "bench"}}
    for logical in functions:
        env = {**function_env(resolver, logical), **runtime, "AWS_LAMBDA_FUNCTION_NAME": logical}
        if "STAFF_ISSUER" in env:
            env["STAFF_ISSUER"] = SAMPLE_STAFF_ISSUER
        envs[logical] = env
    return envs


def libraries_of(fn: dict[str, Any]) -> str:
    """The libraries' floor of a function: that of its trigger (an API's when it has several)."""
    kinds = {TRIGGER_LIBRARIES[e["Type"]] for e in fn["Properties"].get("Events", {}).values()}
    return next(name for name in ("api", "batch", "pydantic") if name in kinds)


def first_event(uri: str) -> Any:
    """The representative event of ``uri``; webhook deliveries signed again with the local secret."""
    name = {**FIRST_EVENTS, **dict(LIBRARIES.values())}[uri]
    event = json.loads((EVENTS / name).read_text())
    if name.startswith("api/webhook_"):
        from devstack.sign_events import api_event, provider_headers

        channel = event["pathParameters"]["channel"]
        body = event["body"].encode()
        event = api_event(channel, body, provider_headers(channel, body))
    return event


def _measure(
    runs: int, functions: dict[str, Any], by_code: dict[str, str]
) -> tuple[list[Sample], list[Sample], dict[str, list[Sample]], dict[str, list[tuple[Sample, Sample]]]]:
    """Floor, baseline, function and libraries' floor samples, a floor sample next to each of the
    others (the libraries' floors: 3 per run, at its start, middle and end, with their floor's)."""
    code = sorted(by_code)
    floor_dir, baseline_dir = ROOT / "bench" / "hello_floor", ROOT / "bench" / "hello_powertools"
    library_dirs = [ROOT / uri for uri, _ in LIBRARIES.values()]
    function_dirs = [ROOT / uri for uri in code]
    for path in (ROOT / "layers" / "loyalty", floor_dir, baseline_dir, *library_dirs, *function_dirs):
        compileall.compile_dir(path, quiet=1)  # a deployed package ships its bytecode
    floors: list[Sample] = []
    baselines: list[Sample] = []
    samples: dict[str, list[Sample]] = {uri: [] for uri in code}
    libraries: dict[str, list[tuple[Sample, Sample]]] = {name: [] for name in LIBRARIES}

    def sample_libraries(envs: dict[str, dict[str, str]]) -> None:
        for name, (uri, _) in LIBRARIES.items():
            floor = sample(floor_dir, envs["floor"], {})
            libraries[name].append((sample(ROOT / uri, envs["floor"], first_event(uri)), floor))

    with emulator() as url:
        for k in range(runs):
            envs = environments(url, functions)
            events = {uri: first_event(uri) for uri in code}
            if k == 0:  # warm the OS's file cache for the site-packages both sides import
                sample(floor_dir, envs["floor"], {})
            sample_libraries(envs)
            for j, uri in enumerate(code):
                floors.append(sample(floor_dir, envs["floor"], {}))
                samples[uri].append(sample(ROOT / uri, envs[by_code[uri]], events[uri]))
                if j == len(code) // 2:
                    sample_libraries(envs)
            sample_libraries(envs)
            baselines.append(sample(baseline_dir, envs["floor"], {}))
    return floors, baselines, samples, libraries


def _ratios(floors: list[Sample], samples: dict[str, list[Sample]]) -> dict[str, dict[str, float]]:
    """Per code dir: the median of each sample over the floor's sample taken just before it."""
    code = sorted(samples)
    out = {}
    for j, uri in enumerate(code):
        pairs = [(s, floors[k * len(code) + j]) for k, s in enumerate(samples[uri])]
        out[uri] = {
            "x_floor": round(statistics.median(s.cpu / f.cpu for s, f in pairs), 2),
            "x_floor_first_use": round(statistics.median(s.cold / f.cold for s, f in pairs), 2),
            "x_floor_wall": round(statistics.median(s.wall / f.wall for s, f in pairs), 2),
        }
    return out


def main(quick: bool = True) -> dict[str, Any]:
    runs = 1 if quick else 7
    functions = resources_of(load(), "AWS::Serverless::Function")
    by_code = code_dirs(functions)
    missing = sorted(set(by_code) - set(FIRST_EVENTS))
    assert not missing, f"no first event for {missing}"
    started = time.perf_counter()
    floors, baselines, samples, library_samples = _measure(runs, functions, by_code)
    floor = summary(floors)
    libraries: dict[str, dict[str, Any]] = {}
    for name, pairs in library_samples.items():
        libraries[name] = {
            "code": LIBRARIES[name][0],
            "first_event": LIBRARIES[name][1],
            **summary([s for s, _ in pairs]),
            "x_floor": round(statistics.median(s.cpu / f.cpu for s, f in pairs), 2),
            "x_floor_first_use": round(statistics.median(s.cold / f.cold for s, f in pairs), 2),
        }
    out: dict[str, Any] = {
        "floor_boto3_logger": floor,
        "floor_cpu_samples_ms": sorted(round(s.cpu, 1) for s in floors),
        "floor_cold_cpu_samples_ms": sorted(round(s.cold, 1) for s in floors),
        "baseline_powertools_hello": summary(baselines),
        "budget_x_floor": BUDGET,
        "libraries": libraries,
        "libraries_over_budget": sorted(k for k, v in libraries.items() if v["x_floor"] > BUDGET),
        "samples_per_function": runs,
        "first_events": {logical: FIRST_EVENTS[uri] for uri, logical in sorted(by_code.items())},
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        "functions": {},
    }
    ratios = _ratios(floors, samples)
    for logical, fn in sorted(functions.items()):
        uri = str(fn["Properties"]["CodeUri"])
        row = {**summary(samples[uri]), **ratios[uri]}
        row["x_floor_median_cpu"] = round(row["cpu_ms"] / floor["cpu_ms"], 2)
        lib = libraries[libraries_of(fn)]
        row["libraries"] = libraries_of(fn)
        row["x_libraries"] = round(row["cpu_ms"] / lib["cpu_ms"], 2)
        row["x_libraries_first_use"] = round(row["cold_cpu_ms"] / lib["cold_cpu_ms"], 2)
        row["own_cpu_ms"] = round(row["cpu_ms"] - lib["cpu_ms"], 1)
        out["functions"][logical] = row
    out["over_budget"] = sorted(k for k, v in out["functions"].items() if v["x_floor"] > BUDGET)
    out["over_budget_first_use"] = sorted(
        k for k, v in out["functions"].items() if v["x_floor_first_use"] > BUDGET
    )
    out["measure_seconds"] = round(time.perf_counter() - started, 1)
    return out


_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(code_dir: Path, env: dict[str, str], statement: str = "import app") -> int:
    """The instructions ``statement`` executes in a fresh interpreter from ``code_dir`` (cachegrind)."""
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    proc = subprocess.run(  # noqa: S603 - valgrind on this interpreter, a constant statement
        [*valgrind, sys.executable, "-c", statement],
        env=child_env(code_dir, env),
        cwd=code_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    found = _IREFS.search(proc.stderr)
    if proc.returncode or not found:
        raise RuntimeError(f"{code_dir}: {proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main_instructions() -> dict[str, Any]:
    """Init in millions of instructions: floor, libraries' floors, functions (see the docstring)."""
    from concurrent.futures import ThreadPoolExecutor

    functions = resources_of(load(), "AWS::Serverless::Function")
    by_code = code_dirs(functions)
    floor_dir = ROOT / "bench" / "hello_floor"
    for path in (ROOT / "layers" / "loyalty", ROOT / "bench", *(ROOT / uri for uri in by_code)):
        compileall.compile_dir(path, quiet=1)
    with emulator() as url:
        envs = environments(url, functions)
        jobs = {
            "start-up": (floor_dir, envs["floor"], "pass"),
            "floor": (floor_dir, envs["floor"], "import app"),
            **{
                f"libraries:{k}": (ROOT / uri, envs["floor"], "import app")
                for k, (uri, _) in LIBRARIES.items()
            },
            **{uri: (ROOT / uri, envs[logical], "import app") for uri, logical in by_code.items()},
        }
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            counted = dict(zip(jobs, pool.map(lambda job: instructions(*job), jobs.values()), strict=True))
    start = counted.pop("start-up")
    mega = {k: round((v - start) / 1e6) for k, v in counted.items()}
    floor = mega["floor"]
    libraries = {
        k: {"minstr": mega[f"libraries:{k}"], "x_floor": round(mega[f"libraries:{k}"] / floor, 2)}
        for k in LIBRARIES
    }
    rows: dict[str, dict[str, Any]] = {}
    for logical, fn in sorted(functions.items()):
        own, lib = mega[str(fn["Properties"]["CodeUri"])], libraries_of(fn)
        rows[logical] = {
            "minstr": own,
            "x_floor": round(own / floor, 2),
            "libraries": lib,
            "x_libraries": round(own / libraries[lib]["minstr"], 2),
        }
    return {
        "unit": "millions of instructions of `import app`, the interpreter's start-up taken out",
        "start_up_minstr": round(start / 1e6),
        "floor_minstr": floor,
        "budget_x_floor": BUDGET,
        "libraries": libraries,
        "libraries_over_budget": sorted(k for k, v in libraries.items() if v["x_floor"] > BUDGET),
        "functions": rows,
        "over_budget": sorted(k for k, v in rows.items() if v["x_floor"] > BUDGET),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "layers" / "loyalty"))  # the webhook's signing helpers (devstack)
    parser = argparse.ArgumentParser(description="cold starts (init, init + first use) against the floor")
    parser.add_argument("--full", action="store_true", help="7 samples per function (default: 1)")
    parser.add_argument("--instructions", action="store_true", help="init in instructions (valgrind)")
    args = parser.parse_args()
    figures = main_instructions() if args.instructions else main(quick=not args.full)
    print(json.dumps(figures, indent=2))
