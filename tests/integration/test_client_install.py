"""`pip install 'lro-server[client]'` in a bare virtualenv: the client works, without the server's
dependencies. Offline: the dependencies' wheels come from .wheelhouse (built by `make` at setup
time) and lro-server's own wheel is built here from the working tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".wheelhouse"
#: Distributions only the server needs: none may come with the client.
SERVER_ONLY = {
    "aiohttp",
    "databricks-sdk",
    "google-cloud-spanner",
    "google-cloud-workflows",
    "grpcio-health-checking",
    "grpcio-reflection",
    "grpcio-status",
    "prometheus-client",
    "pydantic-settings",
    "rich",
    "uvloop",
}
SCRIPT = """
import importlib.util, sys
from lro_server.client import Client
from lro_server.v1 import Run

for module in ("databricks", "aiohttp", "pydantic_settings", "rich", "grpc_status"):
    assert importlib.util.find_spec(module) is None, module
with Client(sys.argv[1]) as client:
    run = client.jobs.run_now(job_id=int(sys.argv[2])).result(timeout=60)
    assert isinstance(run, Run)
    print(run.result_state)
"""


def _run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    return subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**env, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        **kwargs,  # type: ignore[arg-type]
    )


def _wheel(tmp_path: Path) -> Path:
    """lro-server's wheel, built offline from a copy of the working tree."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "lro_server", source / "lro_server", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path / "dist"
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--quiet", "--wheel-dir", dist, source,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return dist


def test_the_client_extra_installs_alone_and_works(tmp_path: Path, server, create_job):
    if not (WHEELHOUSE / ".built").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("the client wheelhouse is missing: `make test` builds it")
        pytest.skip("no .wheelhouse (make builds it at setup time)")
    dist = _wheel(tmp_path)
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run(
        python, "-m", "pip", "install", "--quiet", "--no-index",
        "--find-links", WHEELHOUSE, "--find-links", dist,
        "-c", ROOT / "constraints.txt", "lro-server[client]",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    frozen = _run(python, "-m", "pip", "list", "--format", "freeze").stdout
    names = {line.split("==")[0].lower().replace("_", "-") for line in frozen.split()}
    assert {"lro-server", "grpcio", "protobuf", "google-api-core"} <= names
    assert names & SERVER_ONLY == set()

    used = _run(python, "-c", SCRIPT, server.grpc_target, str(create_job("bare")), cwd=tmp_path)
    assert used.returncode == 0, used.stderr
    assert used.stdout.split() == ["SUCCESS"]

    # The server's commands say in one line what to install.
    command = _run(venv / "bin" / "lro-server", "--help")
    assert command.returncode == 1
    assert command.stderr.strip().splitlines() == [
        f"lro-server: {_first_missing(command.stderr)} is not installed: lro-server needs the "
        "server's dependencies (pip install 'lro-server[server]')"
    ]


def _first_missing(stderr: str) -> str:
    return stderr.split("lro-server: ", 1)[1].split(" ", 1)[0]
