"""Completion latency with and without webhook push: from a run's end to its operation done.

Starts the Databricks simulator (real clock) and a real server (SQLite store) with the
default poll intervals scaled down by ``--scale`` (5 s → 60 s backing off by 1.5, divided by
the scale), submits N runs that hold, lets their poll intervals back off for a while (as
they do for any run longer than a minute), then ends them one after another and measures,
for each, the time from ``finish_run`` to the operation read done. Once without push (the
tracker learns the end at its next poll), once with the simulator delivering the run's
``on_success`` webhook to ``POST /databricks/webhooks/jobs``.

Usage::

    python benchmarks/webhook_latency.py            # 20 runs, intervals / 4
    python benchmarks/webhook_latency.py --quick    # 6 runs, intervals / 10

Prints a table and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.cli.app import AppConfig
from lro_server.databricks.client import DatabricksOptions
from lro_server.http.webhooks import PATH, WebhookCredentials
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.server_thread import ServerThread

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import git_revision, percentile, table, write_result

USER, PASSWORD, DESTINATION = "bench", "bench-secret", "bench-destination"


def _config(store: str, sim_url: str, scale: float, push: bool) -> AppConfig:
    return AppConfig(
        store=store,
        databricks=DatabricksOptions(
            host=sim_url, token="bench-token", call_timeout_seconds=30, requests_per_second=5000
        ),
        poll_interval_seconds=5.0 / scale,
        max_poll_interval_seconds=60.0 / scale,
        first_poll_seconds=1.0 / scale,
        webhook=WebhookCredentials(USER, PASSWORD) if push else None,
        webhook_destination_id=DESTINATION if push else "",
    )


def _measure(runs: int, scale: float, hold: float, push: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp, SimulatorThread() as sim:
        config = _config(f"sqlite:///{tmp}/lro.db", sim.url, scale, push)
        server = ServerThread(config).start()
        try:
            if push:
                sim.add_webhook_destination(
                    DESTINATION, server.http_url + PATH, username=USER, password=PASSWORD
                )
            sim.set_timeline("runs", "hold")
            with grpc.insecure_channel(server.grpc_target) as channel:
                jobs = jobs_pb2_grpc.JobsStub(channel)
                operations = operations_pb2_grpc.OperationsStub(channel)
                task = {"task_key": "main", "notebook_task": {"notebook_path": "/b"}}
                names = []
                for index in range(runs):
                    body = {"run_name": f"bench-{index}", "tasks": [task]}
                    request = json_format.ParseDict(body, jobs_pb2.SubmitRunRequest())
                    names.append(jobs.Submit(request).name)
                time.sleep(hold)  # let the poll intervals back off, as for long runs
                latencies = []
                for name in names:
                    run_id = _run_id(operations, name)
                    started = time.perf_counter()
                    sim.finish_run(run_id, "SUCCESS")
                    while not operations.GetOperation(
                        operations_pb2.GetOperationRequest(name=name)
                    ).done:
                        time.sleep(0.005)
                    latencies.append(time.perf_counter() - started)
                return latencies
        finally:
            server.stop()


def _run_id(operations: Any, name: str) -> int:
    operation = operations.GetOperation(operations_pb2.GetOperationRequest(name=name))
    meta = jobs_pb2.RunMetadata()
    operation.metadata.Unpack(meta)
    return int(meta.run_id)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both modes; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--scale", type=float, help="divide the default poll intervals by this")
    args = parser.parse_args(argv)
    runs = args.runs or (6 if args.quick else 20)
    scale = args.scale or (10.0 if args.quick else 4.0)
    hold = 60.0 / scale  # the intervals back off towards their maximum meanwhile
    figures: dict[str, Any] = {"runs": runs, "scale": scale, "hold_seconds": hold}
    rows = []
    for push in (False, True):
        samples = sorted(_measure(runs, scale, hold, push))
        mode = "webhook push" if push else "polling only"
        figures[mode] = {
            "median_ms": statistics.median(samples) * 1000,
            "p95_ms": percentile(samples, 0.95) * 1000,
            "max_ms": samples[-1] * 1000,
        }
        rows.append(
            [
                mode,
                f"{statistics.median(samples) * 1000:.0f}",
                f"{percentile(samples, 0.95) * 1000:.0f}",
                f"{samples[-1] * 1000:.0f}",
            ]
        )
    ratio = figures["polling only"]["median_ms"] / max(figures["webhook push"]["median_ms"], 1e-6)
    figures["median_ratio"] = ratio
    print(
        f"completion latency from a run's end to its operation done ({runs} runs, poll "
        f"intervals {5 / scale:g}-{60 / scale:g} s)"
    )
    print(table(["mode", "median ms", "p95 ms", "max ms"], rows))
    print(f"push is {ratio:.0f}x faster at the median")
    path = write_result("webhook_latency", {"revision": git_revision(), "figures": figures})
    print(f"written to {path}")
    return figures


if __name__ == "__main__":
    main()
