"""Helpers of the security and reliability tests: fast configs, a server subprocess, jobs.

The subprocess helper runs ``python -m lro_server.cli.server serve`` exactly as a user
would, configured by ``LRO_*`` variables, so tests can ``kill -9`` it or send SIGTERM.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import chains_pb2, jobs_pb2
from lro_server.cli.app import AppConfig
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until

#: Multiplier of the reliability scenarios (benchmarks/soak.py raises it; tests run at 1).
SCALE = max(1, int(os.environ.get("LRO_SOAK_SCALE", "1")))
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
        # A resume that failed (store unavailable) is retried at the next re-read.
        "resume": ResumeConfig(recheck_seconds=0.5),
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
        self._pump_thread = threading.Thread(target=self._pump, args=(found,), daemon=True)
        self._pump_thread.start()
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
        self._close()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            self._pump_thread.join(10)  # EOF: the child is gone
            if self.process.stdout is not None:
                self.process.stdout.close()


# -- a mixed workload with known outcomes ----------------------------------------------------


@dataclasses.dataclass
class Planned:
    """One operation of a workload and the outcome it must reach."""

    kind: str  # run_now | submit | chain
    expect: str  # SUCCESS | FAILED | CANCELLED
    request_id: str
    name: str = ""


def _phases(result: str, running: float) -> list[dict[str, Any]]:
    if result == "HOLD":
        return [{"state": "PENDING", "seconds": 0.1}, {"state": "RUNNING"}]
    return [
        {"state": "PENDING", "seconds": 0.1},
        {"state": "RUNNING", "seconds": running},
        {
            "state": "TERMINATED",
            "result_state": result,
            "state_message": "" if result == "SUCCESS" else "the input table is empty",
        },
    ]


class Workload:
    """Jobs, run names and timelines for a mix of RunNow, Submit and RunChain operations.

    Runs stay RUNNING for ``running`` seconds and then succeed or fail by themselves (so a
    server can be killed while they run); operations planned CANCELLED hold forever until
    cancelled.
    """

    def __init__(self, sim: SimulatorThread, *, running: float = 1.0, tag: str = "w") -> None:
        self.sim = sim
        self.tag = tag
        self.jobs: dict[str, int] = {}
        for result in ("SUCCESS", "FAILED", "HOLD"):
            job_id = create_job(sim, f"{tag}-{result.lower()}")
            sim.set_timeline("runs", _phases(result, running), job_id=job_id)
            sim.set_timeline("runs", _phases(result, running), run_name=f"{tag}-{result.lower()}")
            self.jobs[result] = job_id
        # Chain steps run half as long: a chain is on its second step soon enough.
        self.jobs["CHAIN"] = create_job(sim, f"{tag}-chain")
        sim.set_timeline("runs", _phases("SUCCESS", running / 2), job_id=self.jobs["CHAIN"])

    def plan(self, count: int, *, chains: int = 0, cancels: int = 0) -> list[Planned]:
        """``count`` operations: ``chains`` chains, ``cancels`` to cancel, the rest run/submit."""
        plans = []
        for index in range(count):
            request_id = f"{self.tag}-{index}-{uuid.uuid4().hex[:8]}"
            if index < chains:
                plans.append(Planned("chain", "SUCCESS", request_id))
            elif index < chains + cancels:
                kind = "run_now" if index % 2 else "submit"
                plans.append(Planned(kind, "CANCELLED", request_id))
            else:
                kind = "run_now" if index % 2 else "submit"
                plans.append(Planned(kind, "SUCCESS" if index % 3 else "FAILED", request_id))
        return plans

    def request(self, plan: Planned) -> tuple[str, Message]:
        """The method path and request that start ``plan``."""
        result = "HOLD" if plan.expect == "CANCELLED" else plan.expect
        if plan.kind == "run_now":
            return "/lro.databricks.v1.Jobs/RunNow", jobs_pb2.RunNowRequest(
                job_id=self.jobs[result], request_id=plan.request_id
            )
        if plan.kind == "submit":
            task = struct_pb2.Struct()
            task.update({"task_key": "t", "notebook_task": {"notebook_path": "/nb"}})
            return "/lro.databricks.v1.Jobs/Submit", jobs_pb2.SubmitRunRequest(
                run_name=f"{self.tag}-{result.lower()}", tasks=[task], request_id=plan.request_id
            )
        steps = [
            chains_pb2.ChainStep(
                name=f"step{i}", run_now=jobs_pb2.RunNowRequest(job_id=self.jobs["CHAIN"])
            )
            for i in range(2)
        ]
        return "/lro.databricks.v1.Chains/RunChain", chains_pb2.RunChainRequest(
            steps=steps, request_id=plan.request_id
        )


def call_retrying(
    channel: grpc.Channel, path: str, request: Message, response_type: Any, timeout: float = 60
) -> Any:
    """Call ``path``, retrying UNAVAILABLE (as a client should) until ``timeout``."""
    call = channel.unary_unary(
        path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )

    def attempt() -> Any:
        try:
            return call(request, timeout=10)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED):  # type: ignore[attr-defined]
                return None
            raise

    return wait_until(attempt, timeout=timeout, what=f"{path} to answer")


def start_all(channel: grpc.Channel, workload: Workload, plans: list[Planned]) -> None:
    """Start every planned operation (retrying with its request id); fills in names."""
    for plan in plans:
        path, request = workload.request(plan)
        op = call_retrying(channel, path, request, operations_pb2.Operation)
        plan.name = op.name


def outcome(op: operations_pb2.Operation) -> str:
    """SUCCESS, FAILED or CANCELLED: how a done operation ended."""
    if op.HasField("error"):
        return "CANCELLED" if op.error.code == 1 else "FAILED"
    if op.response.Is(jobs_pb2.Run.DESCRIPTOR):
        run = jobs_pb2.Run()
        op.response.Unpack(run)
        return "SUCCESS" if run.result_state == "SUCCESS" else f"run {run.result_state}"
    return "SUCCESS" if op.HasField("response") else "not done"


def wait_all_done(
    channel: grpc.Channel, plans: list[Planned], timeout: float = 60
) -> dict[str, operations_pb2.Operation]:
    """Poll until every planned operation is done; their final states by name."""
    final: dict[str, operations_pb2.Operation] = {}

    def probe() -> bool:
        for plan in plans:
            if plan.name in final:
                continue
            op = call_retrying(
                channel,
                "/google.longrunning.Operations/GetOperation",
                operations_pb2.GetOperationRequest(name=plan.name),
                operations_pb2.Operation,
            )
            if op.done:
                final[plan.name] = op
        return len(final) == len(plans)

    wait_until(probe, timeout=timeout, interval=0.2, what="every operation to finish")
    return final


def duplicate_entities(sim: SimulatorThread) -> int:
    """Runs started twice for one idempotency token (0 when dedupe held)."""
    tokens = collections.Counter(c.attrs.get("idempotency_token") for c in sim.created("runs"))
    return sum(n - 1 for token, n in tokens.items() if token and n > 1)
