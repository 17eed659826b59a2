"""Run every benchmark (``bench/bench_*.py``, each with ``main(quick: bool) -> dict``) and save figures."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="larger runs (default: quick, for CI)")
    parser.add_argument("only", nargs="*", help="benchmark names (e.g. ingest), default all")
    args = parser.parse_args()
    sys.path[:0] = [str(HERE.parent), str(HERE.parent / "layers" / "loyalty")]
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    RESULTS.mkdir(exist_ok=True)
    from devstack import moto_patches

    moto_patches.install()
    names = args.only or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    summary = {}
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.perf_counter()
        figures = module.main(quick=not args.full)
        figures["wall_seconds"] = round(time.perf_counter() - started, 2)
        (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
        summary[name] = figures
        print(f"== {name}\n{json.dumps(figures, indent=2, default=str)}")
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
