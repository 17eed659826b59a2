"""Import time (cold start) of every function's handler, against the floor of a DynamoDB function.

The floor (``bench/hello_floor``) is a boto3 client + a Powertools Logger hello world: what any
function that talks to DynamoDB must import. The floor and every function are measured in the
same run, interleaved (floor, function, floor, function, ...), so that the machine's load weighs on
both alike (budget: ``x_floor`` <= 1.25).

Each handler is imported in a fresh interpreter (as Lambda would on a cold start, with the layer
and the function's code on the path, bytecode compiled beforehand as in a deployed package). Two
figures per import: ``cpu_ms``, the CPU time the interpreter spends in ``import app`` (the ratio
``x_floor``, the median over runs of each sample over the floor's sample taken just before it,
uses it: on a shared, loaded machine the CPU time of an import barely moves while its
wall time doubles), and ``import_ms``, the cumulative wall time of ``app`` by ``-X importtime``.
Quick mode (CI) takes 1 sample of each function, full mode 7; the floor is sampled next to every
function either way, and each figure is a median.
"""

from __future__ import annotations

import compileall
import os
import re
import statistics
import subprocess
import sys
import time
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


_PROBE = "import time; t = time.process_time(); import app; print('cpu_ms', (time.process_time() - t) * 1000)"


def sample(code_dir: Path) -> tuple[float, float, set[str]]:
    """(CPU ms, wall ms, modules) of one cold ``import app`` from ``code_dir``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "loyalty"), str(code_dir)]),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "bench",
    }
    for name in ("POWERTOOLS_TRACE_DISABLED", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    proc = subprocess.run(  # noqa: S603 - this interpreter, a constant probe
        [sys.executable, "-X", "importtime", "-c", _PROBE],
        env=env,
        cwd=code_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    modules, wall = set(), None
    for m in _LINE.finditer(proc.stderr):
        modules.add(m.group(3))
        if m.group(3) == "app":
            wall = int(m.group(2)) / 1000
    assert wall is not None, proc.stderr[-500:]
    cpu = float(proc.stdout.split("cpu_ms", 1)[1])
    return cpu, wall, modules


def summary(samples: list[tuple[float, float, set[str]]]) -> dict[str, Any]:
    modules = set().union(*(m for _, _, m in samples))
    return {
        "cpu_ms": round(statistics.median(c for c, _, _ in samples), 1),
        "import_ms": round(statistics.median(w for _, w, _ in samples), 1),
        "heavy_modules": sorted(h for h in HEAVY if any(mod.startswith(h) for mod in modules)),
        "modules": len(modules),
    }


def main(quick: bool = True) -> dict[str, Any]:
    runs = 1 if quick else 7
    template = load()
    functions = resources_of(template, "AWS::Serverless::Function")
    code = sorted({str(fn["Properties"]["CodeUri"]) for fn in functions.values()})
    floor_dir, baseline_dir = ROOT / "bench" / "hello_floor", ROOT / "bench" / "hello_powertools"
    started = time.perf_counter()
    for path in (ROOT / "layers" / "loyalty", floor_dir, baseline_dir, *(ROOT / uri for uri in code)):
        compileall.compile_dir(path, quiet=1)  # a deployed package ships its bytecode
    sample(floor_dir)  # warm the OS's file cache for the site-packages both sides import
    floors: list[tuple[float, float, set[str]]] = []
    samples: dict[str, list[tuple[float, float, set[str]]]] = {uri: [] for uri in code}
    for _ in range(runs):
        for uri in code:  # side by side: a floor sample next to each function's
            floors.append(sample(floor_dir))
            samples[uri].append(sample(ROOT / uri))
    baseline = summary([sample(baseline_dir) for _ in range(runs)])
    floor = summary(floors)
    out: dict[str, Any] = {
        "floor_boto3_logger": floor,
        "floor_cpu_samples_ms": sorted(round(c, 1) for c, _, _ in floors),
        "baseline_powertools_hello": baseline,
        "budget_x_floor": BUDGET,
        "samples_per_function": runs,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        "functions": {},
    }
    figures = {uri: summary(s) for uri, s in samples.items()}
    pairs: dict[str, list[tuple[float, float]]] = {
        uri: [] for uri in code
    }  # each sample over the floor's sample taken just before it
    for k in range(runs):
        for j, uri in enumerate(code):
            f_cpu, f_wall, _ = floors[k * len(code) + j]
            cpu, wall, _ = samples[uri][k]
            pairs[uri].append((cpu / f_cpu, wall / f_wall))
    for logical, fn in sorted(functions.items()):
        uri = str(fn["Properties"]["CodeUri"])
        row = dict(figures[uri])
        row["x_floor"] = round(statistics.median(c for c, _ in pairs[uri]), 2)
        row["x_floor_wall"] = round(statistics.median(w for _, w in pairs[uri]), 2)
        row["x_floor_median_cpu"] = round(row["cpu_ms"] / floor["cpu_ms"], 2)
        out["functions"][logical] = row
    out["over_budget"] = sorted(k for k, v in out["functions"].items() if v["x_floor"] > BUDGET)
    out["measure_seconds"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(quick=False), indent=2))
