"""Import time (cold start) of every function's handler, against the floor of a DynamoDB function.

The floor (``bench/hello_floor``) is a boto3 client + a Powertools Logger hello world: what any
function that talks to DynamoDB must import. The floor and every function are measured in the
same run, interleaved (floor, function, floor, function, ...), so that the machine's load weighs on
both alike; ``x_floor`` is each function's median over the floor's median (budget: 1.25).

Each handler is imported in a fresh interpreter with ``-X importtime`` (as Lambda would on a cold
start, with the layer and the function's code on the path); the figure is the median over runs
of the cumulative import time of its ``app`` module, in milliseconds.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
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


def measure(code_dir: Path, runs: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "loyalty"), str(code_dir)]),
        "PYTHONDONTWRITEBYTECODE": "0",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "bench",
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    samples, modules = [], set()
    for _ in range(runs + 1):  # the first run warms the bytecode cache, as a deployed package would be
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import app"],
            env=env,
            cwd=code_dir,
            capture_output=True,
            text=True,
            check=True,
        )
        total = None
        for m in _LINE.finditer(proc.stderr):
            modules.add(m.group(3))
            if m.group(3) == "app":
                total = int(m.group(2)) / 1000
        assert total is not None, proc.stderr[-500:]
        samples.append(total)
    return {
        "import_ms": round(statistics.median(samples[1:]), 1),
        "heavy_modules": sorted(h for h in HEAVY if any(mod.startswith(h) for mod in modules)),
        "modules": len(modules),
    }


def main(quick: bool = True) -> dict[str, Any]:
    runs = 1 if quick else 9
    baseline = measure(ROOT / "bench" / "hello_powertools", runs)
    template = load()
    code = {
        str(fn["Properties"]["CodeUri"])
        for fn in resources_of(template, "AWS::Serverless::Function").values()
    }
    floors: list[float] = []
    figures: dict[str, dict[str, Any]] = {}
    for uri in sorted(code):  # side by side: a floor sample next to each function's
        floors.append(measure(ROOT / "bench" / "hello_floor", runs)["import_ms"])
        figures[uri] = measure(ROOT / uri, runs)
    floor = statistics.median(floors)
    out: dict[str, Any] = {
        "floor_boto3_logger_ms": round(floor, 1),
        "floor_samples_ms": floors,
        "baseline_powertools_hello_ms": baseline["import_ms"],
        "budget_x_floor": BUDGET,
        "functions": {},
    }
    for logical, fn in sorted(resources_of(template, "AWS::Serverless::Function").items()):
        row = dict(figures[str(fn["Properties"]["CodeUri"])])
        row["x_floor"] = round(row["import_ms"] / floor, 2)
        row["x_baseline"] = round(row["import_ms"] / baseline["import_ms"], 2)
        out["functions"][logical] = row
    out["over_budget"] = sorted(k for k, v in out["functions"].items() if v["x_floor"] > BUDGET)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(quick=False), indent=2))
