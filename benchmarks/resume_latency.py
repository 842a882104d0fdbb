"""Resume latency of the embedded waiter: from a child written done to its parent resumed.

Starts a real server (both fronts, tracker, SQLite store, embedded waiter) against the
Databricks simulator, runs N one-step chains through gRPC, and for each chain compares two
commit times the store stamped itself: the child's final write (the tracker finishing the
run's operation) and the parent's final write (the chain resumed and finished). The gap is
the whole resume path: store listener, waiter wake-up, the resume's re-reads, the method's
decision and its compare-and-set commit. Databricks latency is not in it.

Usage::

    python benchmarks/resume_latency.py            # 200 chains
    python benchmarks/resume_latency.py --quick    # 20 chains
    python benchmarks/resume_latency.py --chains 500 --concurrency 32

Prints a table and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from google.api_core import operations_v1

from lro_server._proto.lro.databricks.v1 import chains_pb2, chains_pb2_grpc, jobs_pb2
from lro_server.cli.app import AppConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.server_thread import ServerThread

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import git_revision, percentile, table, write_result


def _config(store: str, sim_url: str) -> AppConfig:
    return AppConfig(
        store=store,
        databricks=DatabricksOptions(
            host=sim_url, token="bench-token", call_timeout_seconds=30, requests_per_second=5000
        ),
        poll_interval_seconds=0.1,
        max_poll_interval_seconds=0.5,
        first_poll_seconds=0.05,
    )


def _create_job(sim: SimulatorThread) -> int:
    from databricks.sdk import WorkspaceClient

    client = WorkspaceClient(host=sim.url, token="bench-token", auth_type="pat")
    body = {"name": "bench", "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/b"}}]}
    answer = client.api_client.do("POST", "/api/2.2/jobs/create", body=body)
    assert isinstance(answer, dict)
    return int(answer["job_id"])


def run(chains: int, concurrency: int) -> dict[str, Any]:
    """Run the benchmark; returns the figures."""
    with tempfile.TemporaryDirectory() as tmp, SimulatorThread() as sim:
        job_id = _create_job(sim)
        server = ServerThread(_config(f"sqlite:///{tmp}/bench.db", sim.url)).start()
        try:
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = chains_pb2_grpc.ChainsStub(channel)
                ops = operations_v1.OperationsClient(channel)
                request = chains_pb2.RunChainRequest(
                    steps=[
                        chains_pb2.ChainStep(
                            name="only", run_now=jobs_pb2.RunNowRequest(job_id=job_id)
                        )
                    ]
                )
                started = time.monotonic()
                with ThreadPoolExecutor(concurrency) as pool:
                    names = [op.name for op in pool.map(stub.RunChain, [request] * chains)]
                _wait_all(ops, names, timeout=60 + chains * 0.5)
                elapsed = time.monotonic() - started
            latencies = [_latency(server, name) for name in names]
        finally:
            server.stop()
    ordered = sorted(latencies)
    return {
        "chains": chains,
        "concurrency": concurrency,
        "wall_seconds": round(elapsed, 2),
        "median_ms": round(statistics.median(ordered) * 1e3, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1e3, 3),
        "max_ms": round(ordered[-1] * 1e3, 3),
        "min_ms": round(ordered[0] * 1e3, 3),
    }


def _wait_all(ops: operations_v1.OperationsClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} chains did not finish")
        op = ops.get_operation(pending[-1])
        if not op.done:
            time.sleep(0.05)  # polling the benchmark's own progress, not part of the figure
        else:
            if op.HasField("error"):
                raise RuntimeError(f"{op.name} failed: {op.error.message}")
            pending.pop()


def _latency(server: ServerThread, parent: str) -> float:
    store = server.application.store
    parent_record = server.run(store.get(parent))
    meta = chains_pb2.ChainMetadata()
    parent_record.operation.metadata.Unpack(meta)
    child_record = server.run(store.get(meta.steps[0].operation))
    return float(parent_record.update_time_us - child_record.update_time_us) / 1e6


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="20 chains")
    args = parser.parse_args()
    chains = 20 if args.quick else args.chains
    figures = run(chains, args.concurrency)
    print(
        table(
            ["chains", "concurrency", "median ms", "p99 ms", "max ms", "wall s"],
            [
                [
                    figures["chains"],
                    figures["concurrency"],
                    figures["median_ms"],
                    figures["p99_ms"],
                    figures["max_ms"],
                    figures["wall_seconds"],
                ]
            ],
        )
    )
    path = write_result("resume_latency", {"revision": git_revision(), "figures": figures})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
