"""`make` with the wrong Python: one line that says how, or a .venv rebuilt by itself."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOW = ".".join(str(v) for v in sys.version_info[:3])


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_python", ROOT / "scripts/check_python.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The files `make` reads before it installs anything, in a scratch directory."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt", "scripts/check_python.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAKEFLAGS": ""}
    return subprocess.run(
        ["make", "-C", str(project), "--no-print-directory", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("version", "complaint"),
    [
        ((3, 9, 2), True),
        ((3, 10, 14), True),
        ((3, 11, 0), False),
        ((3, 13, 1), False),
    ],
)
def test_the_interpreter_must_be_3_11_or_newer(version, complaint):
    problem = _script().interpreter_problem(version, "/usr/bin/python3")
    if not complaint:
        assert problem is None
        return
    assert problem == (
        f"needs Python 3.11 or newer, and /usr/bin/python3 is Python {'.'.join(map(str, version))}"
        ": install Python 3.11+ and run make with it, e.g. make run PYTHON=python3.11"
    )


def test_this_interpreter_passes():
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts/check_python.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (check.returncode, check.stderr) == (0, "")


def test_a_venv_whose_python_is_gone_is_rebuilt(project: Path):
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/python").symlink_to("/nonexistent/python3.10")  # its Python was removed
    (venv / "pyvenv.cfg").write_text("home = /nonexistent\nversion = 3.10.4\n")
    (venv / ".installed").touch()  # make would otherwise think it is up to date
    result = _make(project, "-n", "run", f"PYTHON={sys.executable}")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "lro-server: .venv was built by Python 3.10.4, which no longer runs: "
        f"rebuilding it with Python {NOW}"
    ]
    assert not venv.exists()
    assert f"{sys.executable} -m venv .venv" in result.stdout  # and make builds it again


def test_a_working_venv_is_left_alone(project: Path):
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True
    )
    (project / ".venv/.installed").touch()
    result = _make(project, "-n", "run", f"PYTHON={sys.executable}")
    assert (result.returncode, result.stderr) == (0, "")
    assert (project / ".venv/bin/python").exists()
    assert "-m venv" not in result.stdout


def test_a_missing_python_is_one_line_that_says_how(project: Path):
    result = _make(project, "run", "PYTHON=/nonexistent/python3.99")
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert ours == [
        "lro-server: needs Python 3.11 or newer, and /nonexistent/python3.99 was not found: "
        "install Python 3.11+ and run make with it, e.g. make run PYTHON=python3.11"
    ]
    assert not (project / ".venv").exists()
