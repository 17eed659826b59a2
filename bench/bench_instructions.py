"""Cold starts in instructions: ``bench_imports --instructions`` as a benchmark of ``run_all`` (CI included).

CPU time on a shared machine moves by a third between two samples of the same import, so the
quick CPU-time figures of ``bench_imports`` can put a function on either side of the budget from
one run to the next. Counted instructions do not move: this is the figure to read against the
1.25x budget, for the floor, the libraries' floors and every function (see ``bench_imports``).
Needs valgrind (``.ci/run`` installs it); without it, says so instead of measuring.
"""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

from bench import bench_imports


def main(quick: bool = True) -> dict[str, Any]:
    """One run (instructions are the same every time): ``quick`` changes nothing."""
    del quick
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    return bench_imports.main_instructions()


if __name__ == "__main__":
    print(json.dumps(main(quick="--full" not in sys.argv), indent=2))
