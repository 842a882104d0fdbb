"""Write path: operations created per second through Jobs.RunNow against the Databricks
simulator (whose own cost is measured alone first), and tracker updates per second.

The simulator runs in its own process on a manual clock, so its runs only move when told.

1. Simulator alone: jobs/run-now straight at the simulator, same concurrency, so its share
   of a RunNow is visible.
2. RunNow through the server (gRPC, client processes): each call validates, stores an
   operation, calls run-now through databricks-sdk on the server's thread pool, and
   writes the run id back. Tracker polls are pushed out of the window.
3. Tracker: ``runs`` operations whose runs are RUNNING, then the simulator clock jumps and
   every run is TERMINATED at once. We time the tracker from there until it has written
   every operation done (batched runs/list polls plus one compare-and-set write each).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

import aiohttp
import grpc

from benchmarks.common import latency_summary, table, write_result
from benchmarks.load import Load, grpc_load
from benchmarks.processes import ServerProcess, SimulatorProcess
from lro_server._proto.lro.databricks.v1 import jobs_pb2

RUN_NOW = "/lro.databricks.v1.Jobs/RunNow"
HOLD = [
    {"state": "RUNNING", "seconds": 1_000_000},
    {"state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
]


def _create_job(sim: SimulatorProcess, name: str) -> int:
    body = {"name": name, "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/nb"}}]}
    return int(sim.post("/api/2.2/jobs/create", body)["job_id"])


async def _simulator_alone(
    url: str, job_id: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer bench"}) as session:

        async def caller() -> None:
            while time.perf_counter() < end:
                started = time.perf_counter()
                async with session.post(
                    f"{url}/api/2.2/jobs/run-now", json={"job_id": job_id}
                ) as r:
                    await r.read()
                    r.raise_for_status()
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"throughput": round(len(latencies) / elapsed, 1), **latency_summary(latencies)}


def _server_config(sim: SimulatorProcess, db: str, *, fast_tracker: bool) -> dict[str, Any]:
    polls = (
        {"first_poll_seconds": 0.05, "poll_interval_seconds": 0.1, "max_poll_interval_seconds": 0.2}
        if fast_tracker
        else {"first_poll_seconds": 3600.0, "poll_interval_seconds": 3600.0}
    )
    return {
        "store": f"sqlite:///{db}",
        "http_port": -1,
        "databricks": {
            "host": sim.url,
            "token": "bench",
            "call_timeout_seconds": 30.0,
            "requests_per_second": 1_000_000.0,
        },
        **polls,
    }


def _settle(server: ServerProcess, key: str, at_least: float, timeout: float) -> dict[str, Any]:
    """Stats once ``key`` reached ``at_least`` and stopped moving for 0.3 s."""
    deadline = time.monotonic() + timeout
    last = server.command("stats")
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = server.command("stats")
        if now[key] >= at_least and now[key] == last[key]:
            return now
        last = now
    return last


def _wait_for(server: ServerProcess, key: str, at_least: float, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = server.command("stats")
        if stats[key] >= at_least or time.monotonic() > deadline:
            return stats
        time.sleep(0.01)


def run(quick: bool) -> dict[str, Any]:
    """All three phases; returns the JSON-ready results."""
    seconds, warmup, runs = (0.5, 0.3, 100) if quick else (5.0, 1.0, 2_000)
    concurrency = 16
    with tempfile.TemporaryDirectory(prefix="lro-bench-") as tmp, SimulatorProcess() as sim:
        job = _create_job(sim, "bench")
        alone = asyncio.run(_simulator_alone(sim.url, job, concurrency, seconds))
        request = jobs_pb2.RunNowRequest(job_id=job).SerializeToString()
        with ServerProcess(**_server_config(sim, f"{tmp}/create.db", fast_tracker=False)) as server:
            created = server.measured(
                lambda: grpc_load(
                    server.grpc_target, RUN_NOW, [request], Load(concurrency, seconds, warmup)
                )
            )
            cpu_us = created.server_cpu_us
        tracked_job = _create_job(sim, "tracked")
        sim.post(
            "/_sim/timelines", {"kind": "runs", "timeline": HOLD, "match": {"job_id": tracked_job}}
        )
        with ServerProcess(**_server_config(sim, f"{tmp}/track.db", fast_tracker=True)) as server:
            tracked = jobs_pb2.RunNowRequest(job_id=tracked_job).SerializeToString()
            with grpc.insecure_channel(server.grpc_target) as channel:
                call = channel.unary_unary(RUN_NOW)
                for start in range(0, runs, 64):
                    futures = [
                        call.future(tracked, timeout=60)
                        for _ in range(start, min(runs, start + 64))
                    ]
                    for future in futures:
                        future.result()
            running = _settle(server, "store_updates", runs, timeout=120)
            sim.post("/_sim/clock/advance", {"seconds": 2_000_000})
            began = time.time()
            finished = _wait_for(
                server, "store_updates", running["store_updates"] + runs, timeout=300
            )
            elapsed = finished["time"] - began
    return {
        "concurrency": concurrency,
        "simulator_alone": alone,
        "run_now": {**created.summary(), "server_cpu_us_per_call": round(cpu_us, 1)},
        "tracker": {
            "runs": runs,
            "writes_before_finish": int(running["store_updates"]),
            "seconds_to_all_done": round(elapsed, 3),
            "done_writes_per_second": round(runs / elapsed, 1) if elapsed > 0 else None,
            "completed": int(finished["store_updates"] - running["store_updates"]),
        },
    }


def render(result: dict[str, Any]) -> str:
    """The table of a result."""
    s, r, t = result["simulator_alone"], result["run_now"], result["tracker"]
    first = table(
        ["c", "simulator run-now/s", "p50 µs", "p99 µs", "RunNow ops/s", "p50 µs", "p99 µs",
         "server CPU µs/op", "errors"],
        [[result["concurrency"], s["throughput"], s["p50_us"], s["p99_us"], r["throughput"],
          r["p50_us"], r["p99_us"], r["server_cpu_us_per_call"], r["errors"]]],
    )  # fmt: skip
    second = table(
        ["tracked runs", "finished at once", "all done after s", "tracker done-writes/s"],
        [[t["runs"], t["completed"], t["seconds_to_all_done"], t["done_writes_per_second"]]],
    )
    return f"{first}\n\n{second}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(render(result))
    print(f"wrote {write_result('write_path', result)}")
    return result


if __name__ == "__main__":
    main()
