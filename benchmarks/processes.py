"""Child processes of the benchmarks: servers driven over stdin/stdout, and the Databricks
simulator."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks.common import python
from benchmarks.load import LoadResult

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """A :mod:`benchmarks.server_process` child; use as a context manager.

    ``root`` is the source tree the child runs (by default this one; a benchmark measuring
    an earlier revision passes that revision's tree, see :func:`benchmarks.common.revision_tree`).
    ``prefix`` is a command the interpreter runs under (e.g. valgrind and its options).
    """

    def __init__(self, *, root: Path = ROOT, prefix: Sequence[str] = (), **config: Any) -> None:
        self.root = root
        self.prefix = list(prefix)
        self.config = {"host": "127.0.0.1", "grpc_port": 0, "http_port": 0, **config}
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115  closed in stop()
            prefix="lro-bench-server-", suffix=".log", delete=False
        )
        self._proc: subprocess.Popen[str] | None = None
        self.grpc_port = 0
        self.http_port = 0

    @property
    def grpc_target(self) -> str:
        """host:port of its gRPC front."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        """Base URL of its HTTP front."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        """Process id of the server."""
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> ServerProcess:
        """Start the child; returns once both fronts listen."""
        self._proc = subprocess.Popen(
            [*self.prefix, python(), "-m", "benchmarks.server_process", json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=self.root,
            env={**os.environ, "PYTHONPATH": str(self.root)},
        )
        ports = self._read()
        self.grpc_port, self.http_port = ports["grpc_port"], ports["http_port"]
        return self

    def command(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command; returns its answer."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(10)
            raise RuntimeError(f"benchmark server exited:\n{self.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's stderr."""
        try:
            text = Path(self._log.name).read_text(errors="replace")
        except FileNotFoundError:  # stopped: its log is gone
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def measured(self, run: Callable[[], LoadResult]) -> LoadResult:
        """``run()``'s result with ``server_cpu_us``: this server's CPU per call it answered,
        warm-up included in both terms (steadier than throughput on a shared machine)."""
        cpu = self.cpu_seconds()
        result = run()
        served = result.served
        result.server_cpu_us = (self.cpu_seconds() - cpu) / served * 1e6 if served else 0.0
        return result

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        """Whether the child still runs."""
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """``kill -9``: the child dies without releasing anything (then cleaned up)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self.stop()

    def stop(self) -> None:
        """Ask the child to stop; kill it if it does not within 15 s."""
        if self._proc is None:
            return
        try:
            if self._proc.poll() is None and self._proc.stdin is not None:
                self._proc.stdin.write('{"cmd": "stop"}\n')
                self._proc.stdin.flush()
                self._proc.stdin.close()
            self._proc.wait(15)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait(5)
        finally:
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._log.close()
            os.unlink(self._log.name)
            self._proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class SimulatorProcess:
    """The Databricks REST simulator in a child process, on a manual clock."""

    def __init__(self, port: int = 0, *, real_clock: bool = False) -> None:
        self.port = port
        self.real_clock = real_clock
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SimulatorProcess:
        """Start it (on a manual clock unless ``real_clock``, see
        :mod:`benchmarks.sim_process`) and wait for it."""
        self._proc = subprocess.Popen(
            [
                python(),
                "-m",
                "benchmarks.sim_process",
                str(self.port),
                *(["real"] if self.real_clock else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().decode().strip()
        if not self.url:
            raise RuntimeError("the Databricks simulator did not start")
        return self

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to the simulator (REST or ``/_sim/`` control routes)."""
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer bench"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        answer: dict[str, Any] = json.loads(raw) if raw.strip() else {}
        return answer

    def get(self, path: str) -> dict[str, Any]:
        """GET JSON from the simulator (REST or ``/_sim/`` control routes)."""
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": "Bearer bench"}, method="GET"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def calls(self, path_contains: str) -> int:
        """REST calls the simulator answered so far whose path contains ``path_contains``."""
        query = urllib.parse.urlencode({"path_contains": path_contains})
        return int(self.get(f"/_sim/calls?{query}")["count"])

    def stop(self) -> None:
        """Terminate it."""
        if self._proc is not None:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
