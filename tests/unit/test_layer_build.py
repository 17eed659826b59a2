"""The layer ships what a cold start should load: bytecode beside every module, native code for arm64.

``devstack.check_layer`` runs after every ``make sam-build`` (CI included) on the real build; here it
is checked on small layers made to be right or wrong in one way each.
"""

from __future__ import annotations

import os
import py_compile
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.check_layer import EM_AARCH64, problems
from devstack.template import ROOT, load, resources_of

EM_X86_64 = 62
NATIVE = "_native.cpython-313-aarch64-linux-gnu.so"


def _layer(tmp_path: Path, *, mode: py_compile.PycInvalidationMode | None, machine: int) -> Path:
    package = tmp_path / "python" / "pkg"
    package.mkdir(parents=True)
    source = package / "mod.py"
    source.write_text("VALUE = 1\n")
    if mode is not None:
        cfile = package / "__pycache__" / "mod.cpython-313.pyc"
        py_compile.compile(str(source), cfile=str(cfile), invalidation_mode=mode, doraise=True)
    elf = b"\x7fELF\x02\x01\x01" + bytes(11) + struct.pack("<H", machine) + bytes(44)
    (package / NATIVE).write_bytes(elf)
    return tmp_path


def test_a_layer_with_unchecked_bytecode_and_arm64_code_passes(tmp_path: Path) -> None:
    layer = _layer(tmp_path, mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, machine=EM_AARCH64)
    assert problems(layer) == []


@pytest.mark.parametrize(
    ("mode", "machine", "expected"),
    [
        (None, EM_AARCH64, "python/pkg/mod.py: no bytecode"),
        (
            py_compile.PycInvalidationMode.TIMESTAMP,
            EM_AARCH64,
            "python/pkg/mod.py: bytecode checked against the source (not unchecked-hash)",
        ),
        (
            py_compile.PycInvalidationMode.CHECKED_HASH,
            EM_AARCH64,
            "python/pkg/mod.py: bytecode checked against the source (not unchecked-hash)",
        ),
        (
            py_compile.PycInvalidationMode.UNCHECKED_HASH,
            EM_X86_64,
            f"python/pkg/{NATIVE}: built for ELF machine 62, not AArch64 (183)",
        ),
    ],
)
def test_a_layer_wrong_in_one_way_is_refused_with_the_reason(
    tmp_path: Path, mode: py_compile.PycInvalidationMode | None, machine: int, expected: str
) -> None:
    assert problems(_layer(tmp_path, mode=mode, machine=machine)) == [expected]


def test_no_python_directory_is_a_problem(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"{tmp_path / 'python'}: no python/ directory"]


def test_every_layer_is_built_by_its_makefile_with_bytecode() -> None:
    layers = resources_of(load(), "AWS::Serverless::LayerVersion")
    assert layers
    for logical, layer in layers.items():
        assert layer["Metadata"]["BuildMethod"] == "makefile", logical
        makefile = (ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text()
        assert f"build-{logical}:" in makefile
        assert "--invalidation-mode unchecked-hash" in makefile
        assert "_aarch64" in makefile
        assert "--only-binary=:all:" in makefile


#: import names of what the development virtualenv holds and the layer does not (requirements-dev.txt,
#: moto[server]'s own dependencies): a function that needs one of them breaks in Lambda only
NOT_IN_THE_LAYER = (
    "aws_xray_sdk",
    "moto",
    "yaml",
    "requests",
    "pytest",
    "hypothesis",
    "croniter",
    "standardwebhooks",
    "jwt",
    "playwright",
    "samtranslator",
    "flask",
    "werkzeug",
    "devstack",
)
CODE_DIRS = sorted(
    {str(fn["Properties"]["CodeUri"]) for fn in resources_of(load(), "AWS::Serverless::Function").values()}
)


@pytest.mark.parametrize("code", CODE_DIRS)
def test_every_function_imports_with_what_the_layer_ships(code: str) -> None:
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in NOT_IN_THE_LAYER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "loyalty"), str(ROOT / code)])}
    proc = subprocess.run(  # noqa: S603 - this interpreter, a constant statement
        [sys.executable, "-c", f"import sys; {blocked}; import app"],
        cwd=ROOT / code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
