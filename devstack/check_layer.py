"""Check a built layer (``.aws-sam/build/LoyaltyLayer``) is what Lambda should load: bytecode and Graviton.

- Every ``.py`` under ``python/`` has its CPython 3.13 ``.pyc`` beside it, hash-based and unchecked
  (Lambda's file system is read-only: a module without one is compiled on every cold start, and
  a timestamp-checked one goes stale when the zip rounds the source's mtime).
- Every native extension is an ELF for AArch64 (``Architectures: [arm64]``).

``python -m devstack.check_layer [DIR]``: exits 1 and lists what is wrong. ``make sam-build`` runs it.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from devstack.template import ROOT

DEFAULT = ROOT / ".aws-sam" / "build" / "LoyaltyLayer"
MAGIC_313 = (3571).to_bytes(2, "little") + b"\r\n"  # importlib.util.MAGIC_NUMBER of CPython 3.13
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked
EM_AARCH64 = 183


def _pyc_problem(source: Path) -> str | None:
    cached = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
    if not cached.exists():
        return "no bytecode"
    header = cached.read_bytes()[:8]
    if header[:4] != MAGIC_313:
        return f"bytecode of another Python (magic {header[:4]!r})"
    if struct.unpack("<I", header[4:8])[0] != UNCHECKED_HASH:
        return "bytecode checked against the source (not unchecked-hash)"
    return None


def _elf_problem(library: Path) -> str | None:
    header = library.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not an ELF file"
    machine = struct.unpack("<H" if header[5] == 1 else ">H", header[18:20])[0]
    return None if machine == EM_AARCH64 else f"built for ELF machine {machine}, not AArch64 ({EM_AARCH64})"


def problems(layer: Path) -> list[str]:
    """What is wrong with the layer built in ``layer`` (empty: nothing)."""
    root = layer / "python"
    if not root.is_dir():
        return [f"{root}: no python/ directory"]
    found = []
    for source in sorted(root.rglob("*.py")):
        if (problem := _pyc_problem(source)) is not None:
            found.append(f"{source.relative_to(layer)}: {problem}")
    for library in sorted(root.rglob("*.so")):
        if (problem := _elf_problem(library)) is not None:
            found.append(f"{library.relative_to(layer)}: {problem}")
    return found


def main(argv: list[str]) -> int:
    layer = Path(argv[0]) if argv else DEFAULT
    found = problems(layer)
    for line in found[:50]:
        print(line, file=sys.stderr)
    if found:
        print(f"{layer}: {len(found)} problem(s)", file=sys.stderr)
        return 1
    modules = sum(1 for _ in (layer / "python").rglob("*.py"))
    print(f"{layer}: {modules} modules with their bytecode, native code for AArch64")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
