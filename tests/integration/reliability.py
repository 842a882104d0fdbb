"""Helpers of the security and reliability tests: fast configs, a server subprocess, jobs.

The subprocess helper runs ``python -m lro_server.cli.server serve`` exactly as a user
would, configured by ``LRO_*`` variables, so tests can ``kill -9`` it or send SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lro_server.cli.app import AppConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.testing.databricks_sim import SimulatorThread

BANNER = re.compile(r"gRPC on ([\w.\-]+):(\d+), HTTP/JSON on (http://[\w.\-]+:\d+)")
#: Where the repository root is (subprocesses import lro_server from here).
ROOT = Path(__file__).resolve().parents[2]


def quick_config(store: str, sim_url: str, **overrides: Any) -> AppConfig:
    """A configuration that polls Databricks quickly and leases briefly."""
    values: dict[str, Any] = {
        "store": store,
        "databricks": DatabricksOptions(
            host=sim_url, token="test-token", call_timeout_seconds=10, requests_per_second=1000
        ),
        "poll_interval_seconds": 0.05,
        "max_poll_interval_seconds": 0.2,
        "first_poll_seconds": 0.02,
        "lease_seconds": 3.0,
    }
    values.update(overrides)
    return AppConfig(**values)


def create_job(sim: SimulatorThread, name: str = "job") -> int:
    """Create a one-task job in the simulator (its REST API, as a user would)."""
    import requests

    response = requests.post(
        f"{sim.url}/api/2.2/jobs/create",
        json={
            "name": name,
            "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/nb"}}],
        },
        headers={"Authorization": "Bearer test-token"},
        timeout=10,
    )
    response.raise_for_status()
    return int(response.json()["job_id"])


class ServerProcess:
    """``lro-server serve`` in a child process, on free ports, with its log kept.

    Args:
        store: Store URL.
        sim_url: Databricks host (the simulator).
        env: Extra ``LRO_*`` variables (strings).
        log: File receiving the child's stdout and stderr.
    """

    def __init__(self, store: str, sim_url: str, env: Mapping[str, str], log: Path) -> None:
        self.store = store
        self.log = log
        self.environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABRICKS_HOST": sim_url,
            "DATABRICKS_TOKEN": "test-token",
            "LRO_HOST": "127.0.0.1",
            "LRO_LOG_FORMAT": "text",
            "LRO_POLL_INTERVAL_SECONDS": "0.05",
            "LRO_MAX_POLL_INTERVAL_SECONDS": "0.2",
            "LRO_DATABRICKS_REQUESTS_PER_SECOND": "1000",
            "LRO_DATABRICKS_CALL_TIMEOUT_SECONDS": "10",
            **env,
        }
        for key in (
            "DATABRICKS_CLIENT_ID",
            "DATABRICKS_CLIENT_SECRET",
            "DATABRICKS_CONFIG_PROFILE",
        ):
            self.environment.pop(key, None)
        self.process: subprocess.Popen[str] | None = None
        self.grpc_target = ""
        self.http_url = ""
        self._lines: list[str] = []

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the child and wait for its banner line (the ports it bound)."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lro_server.cli.server",
                "serve",
                "--grpc-port",
                "0",
                "--http-port",
                "0",
                "--store",
                self.store,
            ],
            env=self.environment,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = threading.Event()
        threading.Thread(target=self._pump, args=(found,), daemon=True).start()
        if not found.wait(timeout) or not self.grpc_target:
            self.kill()
            raise RuntimeError(f"the server did not start; its output:\n{self.output()}")
        return self

    def _pump(self, found: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log.open("a") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self._lines.append(line)
                match = BANNER.search(line)
                if match and not found.is_set():
                    self.grpc_target = f"{match.group(1)}:{match.group(2)}"
                    self.http_url = match.group(3)
                    found.set()
        found.set()

    def output(self) -> str:
        """Everything the child printed so far."""
        return "".join(self._lines)

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)
