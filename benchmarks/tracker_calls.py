"""REST calls the tracker makes to follow many running job runs, next to per-run polling.

Starts the Databricks simulator and a real server (tracker defaults: first poll after 1 s,
then every 5 s backing off x1.5 up to 60 s), starts N job runs through gRPC that stay
RUNNING, and then, during the same measurement window, counts

* the REST calls the tracker makes (batched: one ``jobs/runs/list?active_only`` walk of 25
  runs a page per poll cycle), and
* the calls of a per-run poller running beside it, doing what the SDK's waiters do: one
  ``runs/get`` per run every 10 s.

``--quick`` follows 100 runs with every interval divided by 10 (a 6 s window stands for a
minute). Prints a table and writes JSON to benchmarks/results/. Target: the tracker makes at
most 1/20 of the per-run poller's calls.

Usage::

    python benchmarks/tracker_calls.py            # 1,000 runs, a 60 s window
    python benchmarks/tracker_calls.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from google.api_core import operations_v1

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.cli.app import AppConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.server_thread import ServerThread

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import git_revision, table, write_result

TARGET_RATIO = 1 / 20


def _start_runs(target: str, job_id: int, count: int) -> list[str]:
    with grpc.insecure_channel(target) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        request = jobs_pb2.RunNowRequest(job_id=job_id)
        with ThreadPoolExecutor(32) as pool:
            return [op.name for op in pool.map(lambda _: stub.RunNow(request), range(count))]


def _wait_running(target: str, names: list[str], timeout: float) -> None:
    """Wait until the tracker has seen every run RUNNING (all are tracked and polled)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        client = operations_v1.OperationsClient(channel)
        pending = list(names)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} runs not yet seen RUNNING")
            meta = jobs_pb2.RunMetadata()
            still = []
            for name in pending:
                client.get_operation(name).metadata.Unpack(meta)
                if meta.life_cycle_state != "RUNNING":
                    still.append(name)
            pending = still
            time.sleep(0.2)


class PerRunPoller:
    """One ``runs/get`` per run every ``interval`` seconds (the SDK waiters' way)."""

    def __init__(self, url: str, run_ids: list[int], interval: float) -> None:
        self.url = url
        self.run_ids = run_ids
        self.interval = interval
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        """Begin polling in a thread of its own."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(30)

    async def _main(self) -> None:
        headers = {"Authorization": "Bearer bench"}
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            await asyncio.gather(*(self._poll(session, run_id) for run_id in self.run_ids))

    async def _poll(self, session: aiohttp.ClientSession, run_id: int) -> None:
        await asyncio.sleep(random.uniform(0, self.interval))  # waiters start spread out
        while not self._stop.is_set():
            url = f"{self.url}/api/2.1/jobs/runs/get?run_id={run_id}"
            async with session.get(url) as response:
                await response.read()
            self.calls += 1
            await asyncio.sleep(self.interval)


def run(runs: int, scale: float, window: float) -> dict[str, Any]:
    """Measure; ``scale`` divides every interval (1: real time)."""
    with SimulatorThread() as sim, tempfile.TemporaryDirectory() as tmp:
        do = _rest(sim.url)
        job_id = int(do("POST", "/api/2.2/jobs/create", body={"name": "bench"})["job_id"])
        sim.set_timeline("runs", "hold", job_id=job_id)
        config = AppConfig(
            store=f"sqlite:///{tmp}/lro.db",
            http_port=-1,
            databricks=DatabricksOptions(host=sim.url, token="bench", requests_per_second=200),
            poll_interval_seconds=5.0 / scale,
            max_poll_interval_seconds=60.0 / scale,
            first_poll_seconds=1.0 / scale,
            lease_seconds=30.0 / scale,
        )
        with ServerThread(config) as server:
            started = time.monotonic()
            names = _start_runs(server.grpc_target, job_id, runs)
            _wait_running(server.grpc_target, names, timeout=120)
            ready = time.monotonic() - started
            run_ids = [int(e.entity_id) for e in sim.created("runs")]
            poller = PerRunPoller(sim.url, run_ids, interval=10.0 / scale)
            tracker_before = server.application.databricks.calls
            log_before = len(sim.call_log(path_contains="/api/2.2/"))
            poller.start()
            time.sleep(window)
            tracker_calls = server.application.databricks.calls - tracker_before
            tracker_logged = len(sim.call_log(path_contains="/api/2.2/")) - log_before
            poller.stop()
            batches = server.application.tracker.batcher.batches
    per_minute = 60.0 / (window * scale)
    return {
        "runs": runs,
        "time_scale": scale,
        "window_seconds": window,
        "setup_seconds": round(ready, 1),
        "tracker_calls": tracker_calls,
        "tracker_calls_logged_by_simulator": tracker_logged,
        "per_run_poller_calls": poller.calls,
        "tracker_calls_per_minute": round(tracker_calls * per_minute, 1),
        "per_run_calls_per_minute": round(poller.calls * per_minute, 1),
        "ratio": round(tracker_calls / max(1, poller.calls), 4),
        "target_ratio": TARGET_RATIO,
        "batched_polls_total": batches,
    }


def _rest(url: str) -> Any:
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=url, token="bench", auth_type="pat").api_client.do


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 runs, time x10 (seconds)")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args(argv)
    runs = args.runs or (100 if args.quick else 1000)
    scale, window = (10.0, 6.0) if args.quick else (1.0, 60.0)
    result = run(runs, scale, window)
    result["revision"] = git_revision()
    result["meets_target"] = result["ratio"] <= TARGET_RATIO
    unit = "per minute" + (" (time x10)" if args.quick else "")
    print(
        table(
            ["polling", f"REST calls {unit}", "per run per minute"],
            [
                [
                    "tracker (batched runs/list)",
                    result["tracker_calls_per_minute"],
                    result["tracker_calls_per_minute"] / runs,
                ],
                [
                    "per run (runs/get every 10 s)",
                    result["per_run_calls_per_minute"],
                    result["per_run_calls_per_minute"] / runs,
                ],
            ],
        )
    )
    print(
        f"{runs} runs; tracker/per-run = {result['ratio']:.4f} "
        f"(target ≤ {TARGET_RATIO:.2f}: {'met' if result['meets_target'] else 'missed'})"
    )
    print(f"wrote {write_result('tracker_calls', result)}")
    return result


if __name__ == "__main__":
    main()
