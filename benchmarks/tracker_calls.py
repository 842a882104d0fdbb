"""Databricks calls of the batched tracker after a burst of starts, next to per-run polling.

For each burst size (100, 1,000 and 5,000 job runs) and each interval setting (the defaults:
first poll after 1 s, then 5 s backing off x1.5 up to 60 s; and a fixed 2 s, as
``LRO_POLL_INTERVAL_SECONDS`` = ``LRO_MAX_POLL_INTERVAL_SECONDS`` = 2), a real server (its
own process, default workspace limit of 20 calls/s) and a Databricks simulator (its own
process, runs held RUNNING) are started; the runs are started through gRPC in one burst
(32 calls in flight), and then, for a window of 60 s from the last start's answer, the
simulator counts the tracker's runs/list and runs/get calls.

Reported per configuration: how long the burst of starts took (and the least it can take
at the workspace limit), the tracker's calls made while starts were under way, and its
calls per run per minute in the window, next to per-run polling: one runs/get per run
every 10 s (the SDK waiters' way) for the defaults, every 2 s for the 2 s setting. Target:
at most 1/20 of per-run polling at every size.

The configurations run side by side (each pair of processes is mostly idle, waiting on
its rate limit), so the full run takes about as long as the largest burst: ~5,000/20 s of
starts plus the window.

Usage::

    python benchmarks/tracker_calls.py              # 100/1,000/5,000 runs, 60 s windows
    python benchmarks/tracker_calls.py --quick      # 100 runs, time x10 (a 6 s window)
    python benchmarks/tracker_calls.py --sizes 250 --intervals 2
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import git_revision, table, write_result
from benchmarks.processes import ServerProcess, SimulatorProcess
from lro_server._proto.lro.databricks.v1 import jobs_pb2

TARGET_RATIO = 1 / 20
RUN_NOW = "/lro.databricks.v1.Jobs/RunNow"
#: The workspace limit (the server's default LRO_DATABRICKS_REQUESTS_PER_SECOND).
RATE = 20.0
#: Starts in flight at once (a client's pool).
IN_FLIGHT = 32
#: Interval settings: name → (first poll, poll interval, max interval, per-run reference).
INTERVALS = {
    "default": (1.0, 5.0, 60.0, 10.0),
    "2": (1.0, 2.0, 2.0, 2.0),
}


async def _burst(target: str, job_id: int, count: int) -> float:
    """Start ``count`` runs, ``IN_FLIGHT`` at a time; seconds until the last answer."""
    request = jobs_pb2.RunNowRequest(job_id=job_id).SerializeToString()
    slots = asyncio.Semaphore(IN_FLIGHT)
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(RUN_NOW)

        async def one() -> None:
            async with slots:
                await call(request, timeout=600)

        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return time.perf_counter() - began


def _polls(sim: SimulatorProcess) -> tuple[int, int]:
    return sim.calls("jobs/runs/list"), sim.calls("jobs/runs/get")


def measure(runs: int, interval: str, scale: float, window: float) -> dict[str, Any]:
    """One configuration; ``scale`` divides every interval and multiplies the rate."""
    first, poll, most, reference = INTERVALS[interval]
    with SimulatorProcess(real_clock=True) as sim, tempfile.TemporaryDirectory() as tmp:
        job_id = int(sim.post("/api/2.2/jobs/create", {"name": "burst"})["job_id"])
        sim.post(
            "/_sim/timelines", {"kind": "runs", "timeline": "hold", "match": {"job_id": job_id}}
        )
        config = {
            "store": f"sqlite:///{tmp}/lro.db",
            "http_port": -1,
            "databricks": {"host": sim.url, "token": "bench", "requests_per_second": RATE * scale},
            "first_poll_seconds": first / scale,
            "poll_interval_seconds": poll / scale,
            "max_poll_interval_seconds": most / scale,
            "lease_seconds": 30.0 / scale,
        }
        with ServerProcess(**config) as server:
            took = asyncio.run(_burst(server.grpc_target, job_id, runs))
            lists, gets = _polls(sim)
            time.sleep(window)
            lists_after, gets_after = _polls(sim)
            tracked = server.command("stats").get("tracked")
    per_minute = 60.0 / (window * scale)  # window calls → calls per (unscaled) minute
    calls = (lists_after - lists) + (gets_after - gets)
    per_run = calls * per_minute / runs
    per_run_polling = 60.0 / reference
    return {
        "runs": runs,
        "interval": interval,
        "time_scale": scale,
        "window_seconds": window,
        "burst_seconds": round(took * scale, 1),
        "burst_least_seconds": round(max(0.0, runs - RATE) / RATE, 1),
        "polls_during_burst": lists + gets,
        "tracked": tracked,
        "list_calls": lists_after - lists,
        "get_calls": gets_after - gets,
        "calls_per_run_per_minute": round(per_run, 3),
        "per_run_polling_per_minute": per_run_polling,
        "ratio": round(per_run / per_run_polling, 4),
        "pages_per_walk": math.ceil(runs / 25),
    }


def run(
    sizes: list[int], intervals: list[str], scale: float, window: float
) -> list[dict[str, Any]]:
    """Every configuration, side by side (one thread each); results in input order."""
    configs = [(n, i) for n in sizes for i in intervals]
    results: dict[tuple[int, str], dict[str, Any]] = {}
    errors: list[BaseException] = []

    def one(runs: int, interval: str) -> None:
        try:
            results[runs, interval] = measure(runs, interval, scale, window)
        except BaseException as exc:  # reported below, with the others' results
            errors.append(exc)

    threads = [threading.Thread(target=one, args=c) for c in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[c] for c in configs]


def render(rows: list[dict[str, Any]]) -> str:
    """The table of the results."""
    return table(
        ["runs", "interval s", "starts took s", "least s", "polls during starts",
         "list calls", "gets", "per run per min", "per-run polling", "ratio", "target"],
        [[r["runs"], r["interval"], r["burst_seconds"], r["burst_least_seconds"],
          r["polls_during_burst"], r["list_calls"], r["get_calls"],
          f"{r['calls_per_run_per_minute']:.2f}", r["per_run_polling_per_minute"],
          f"{r['ratio']:.3f}",
          "≤0.05 " + ("ok" if r["ratio"] <= TARGET_RATIO else "MISS")] for r in rows],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 runs, time x10 (seconds)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--intervals", nargs="+", choices=list(INTERVALS), default=None)
    args = parser.parse_args(argv)
    sizes = args.sizes or ([100] if args.quick else [100, 1000, 5000])
    intervals = args.intervals or list(INTERVALS)
    scale, window = (10.0, 6.0) if args.quick else (1.0, 60.0)
    rows = run(sizes, intervals, scale, window)
    result = {
        "revision": git_revision(),
        "rate_limit_per_second": RATE * scale,
        "rows": rows,
        "meets_target": all(r["ratio"] <= TARGET_RATIO for r in rows),
    }
    note = " (time x10: a 6 s window stands for a minute)" if args.quick else ""
    print(render(rows))
    print(
        f"workspace limit {RATE:g} calls/s{note}; per-run polling = one runs/get per run per "
        "interval (10 s for the defaults); ratio = tracker / per-run polling"
    )
    print(f"wrote {write_result('tracker_calls', result)}")
    return result


if __name__ == "__main__":
    main()
