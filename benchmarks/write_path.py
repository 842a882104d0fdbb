"""Write path: operations created per second through Jobs.RunNow, Databricks calls per core,
and tracker completions per second, for this revision and an earlier one in the same run.

The earlier revision (``--before``, by default the one before this write path: REST calls
through databricks-sdk on a thread pool, two store writes per start, one transaction per
completion) is extracted with ``git archive`` and run from its own tree with the same
interpreter, beside this one; rounds alternate between the two so that load from other work
on a shared machine hits both alike. Without git (a shallow clone) only this revision runs.

The simulator runs in its own process on a manual clock, so its runs only move when told.

1. Simulator alone: jobs/run-now straight at the simulator (one aiohttp client, concurrency
   16), so its share of a RunNow is visible.
2. RunNow through the server (gRPC, client processes), at concurrency 16 and 64: ops/s and
   the server's CPU per operation. Tracker polls are pushed out of the window.
3. Databricks calls per core: ``benchmarks/dbx_calls.py``, the server's client alone making
   runs/get calls (32 in flight), calls per CPU second of its process.
4. Tracker: ``runs`` operations whose runs are RUNNING, then the simulator clock jumps and
   every run is TERMINATED at once. We time the tracker from there until every operation
   is done in the store (read from the SQLite file itself, the same way for both revisions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from benchmarks.common import latency_summary, python, revision_tree, table, write_result
from benchmarks.load import Load, LoadResult, grpc_load
from benchmarks.processes import ROOT, ServerProcess, SimulatorProcess
from lro_server._proto.lro.databricks.v1 import jobs_pb2

RUN_NOW = "/lro.databricks.v1.Jobs/RunNow"
HOLD = [
    {"state": "RUNNING", "seconds": 1_000_000},
    {"state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
]
#: The revision before the async transport, batched completions and single-write starts.
BEFORE = "f65443e"
#: Targets (this revision): RunNow ≥ 5 times the earlier one's ops/s, ≤ 700 µs of server CPU per
#: RunNow, ≥ 2,000 tracker done-writes/s.
TARGETS = {"run_now_speedup": 5.0, "server_cpu_us": 700.0, "done_writes_per_second": 2000.0}


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


def _done(db: str) -> int:
    """Operations done in the store, read from its file (any revision's schema has it)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        (count,) = conn.execute("SELECT count(*) FROM operations WHERE done = 1").fetchone()
    return int(count)


def _wait_done(db: str, at_least: int, timeout: float) -> float:
    """Seconds until ``at_least`` operations are done (polling the file every 20 ms)."""
    began = time.monotonic()
    while _done(db) < at_least:
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"fewer than {at_least} operations done after {timeout:g}s")
        time.sleep(0.02)
    return time.monotonic() - began


def _run_now_rounds(
    servers: dict[str, ServerProcess], request: bytes, level: int, s: dict[str, Any]
) -> dict[str, Any]:
    """Alternate the revisions for ``rounds`` rounds of RunNow at concurrency ``level``."""
    results: dict[str, list[LoadResult]] = {side: [] for side in servers}
    load = Load(level, s["seconds"], s["warmup"], min(2, level))
    for _ in range(s["rounds"]):
        for side, server in servers.items():
            results[side].append(
                server.measured(
                    lambda srv=server: grpc_load(srv.grpc_target, RUN_NOW, [request], load)
                )  # type: ignore[misc]
            )
    out: dict[str, Any] = {"concurrency": level}
    for side, rounds in results.items():
        throughput = statistics.median(r.throughput for r in rounds)
        cpu = statistics.median(r.server_cpu_us for r in rounds)
        merged = [x for r in rounds for x in r.latencies]
        out[side] = {
            "throughput": round(throughput, 1),
            "server_cpu_us": round(cpu, 1),
            "errors": sum(r.errors for r in rounds),
            **latency_summary(merged),
        }
    if "before" in results:
        out["speedup"] = round(
            statistics.median(
                a.throughput / b.throughput if b.throughput else 0.0
                for a, b in zip(results["after"], results["before"], strict=True)
            ),
            2,
        )
    return out


def _dbx_calls(tree: Path, url: str, seconds: float) -> dict[str, Any]:
    answer = subprocess.run(
        [python(), str(ROOT / "benchmarks" / "dbx_calls.py"), url, str(seconds), "32"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    result: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
    result["calls_per_second"] = round(result["calls"] / result["seconds"], 1)
    result["calls_per_cpu_second"] = round(result["calls"] / max(1e-9, result["cpu_seconds"]), 1)
    return result


def _tracker(tree: Path, sim: SimulatorProcess, db: str, runs: int) -> dict[str, Any]:
    """``runs`` tracked runs ending at once; seconds until the tracker wrote them all done."""
    job = _create_job(sim, f"tracked-{tree.name}")
    sim.post("/_sim/timelines", {"kind": "runs", "timeline": HOLD, "match": {"job_id": job}})
    with ServerProcess(root=tree, **_server_config(sim, db, fast_tracker=True)) as server:
        tracked = jobs_pb2.RunNowRequest(job_id=job).SerializeToString()
        with grpc.insecure_channel(server.grpc_target) as channel:
            call = channel.unary_unary(RUN_NOW)
            for start in range(0, runs, 64):
                futures = [
                    call.future(tracked, timeout=60) for _ in range(start, min(runs, start + 64))
                ]
                for future in futures:
                    future.result()
        time.sleep(1.0)  # every run seen RUNNING at least once
        done_before = _done(db)
        sim.post("/_sim/clock/advance", {"seconds": 2_000_000})
        try:
            elapsed = _wait_done(db, done_before + runs, timeout=300)
        except TimeoutError as exc:
            raise TimeoutError(
                f"{tree}: {_done(db) - done_before} of {runs} runs done after 300 s; "
                f"server log:\n{server.log_tail()}"
            ) from exc
    return {
        "runs": runs,
        "seconds_to_all_done": round(elapsed, 3),
        "done_writes_per_second": round(runs / elapsed, 1) if elapsed > 0 else None,
    }


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"seconds": 0.5, "warmup": 0.3, "rounds": 1, "levels": (16,), "runs": 100,
                "dbx_seconds": 1.0}  # fmt: skip
    return {"seconds": 3.0, "warmup": 1.0, "rounds": 3, "levels": (16, 64), "runs": 2_000,
            "dbx_seconds": 5.0}  # fmt: skip


def run(quick: bool, before: str | None = BEFORE) -> dict[str, Any]:
    """Every phase, for this revision and (if extractable) ``before``; JSON-ready."""
    s = _settings(quick)
    with tempfile.TemporaryDirectory(prefix="lro-bench-") as tmp, SimulatorProcess() as sim:
        trees = {"after": ROOT}
        old = revision_tree(before, Path(tmp)) if before else None
        if old is not None:
            trees = {"before": old, "after": ROOT}
        job = _create_job(sim, "bench")
        alone = asyncio.run(_simulator_alone(sim.url, job, 16, s["seconds"]))
        request = jobs_pb2.RunNowRequest(job_id=job).SerializeToString()
        servers = {
            side: ServerProcess(
                root=tree, **_server_config(sim, f"{tmp}/create-{side}.db", fast_tracker=False)
            ).start()
            for side, tree in trees.items()
        }
        try:
            run_now = [_run_now_rounds(servers, request, level, s) for level in s["levels"]]
        finally:
            for server in servers.values():
                server.stop()
        calls = {side: _dbx_calls(tree, sim.url, s["dbx_seconds"]) for side, tree in trees.items()}
        tracker = {}
        for side, tree in trees.items():
            # A simulator of its own: the runs of the phases before would lengthen its lists.
            with SimulatorProcess() as fresh:
                tracker[side] = _tracker(tree, fresh, f"{tmp}/track-{side}.db", s["runs"])
    return {
        "before_revision": before if old is not None else None,
        "simulator_alone": alone,
        "run_now": run_now,
        "databricks_calls": calls,
        "tracker": tracker,
    }


def render(result: dict[str, Any]) -> str:
    """The tables of a result."""
    sides = [side for side in ("before", "after") if side in result["tracker"]]
    s = result["simulator_alone"]
    parts = [f"simulator alone (run-now, c16): {s['throughput']:,.0f}/s, p50 {s['p50_us']:,.0f} µs"]
    rows = []
    for point in result["run_now"]:
        for side in sides:
            r = point[side]
            rows.append([point["concurrency"], side, r["throughput"], r["p50_us"], r["p99_us"],
                         r["server_cpu_us"], r["errors"],
                         f"{point['speedup']:.1f}x" if side == "after" and "speedup" in point
                         else ""])  # fmt: skip
    parts.append(
        table(
            [
                "c",
                "revision",
                "RunNow ops/s",
                "p50 µs",
                "p99 µs",
                "server CPU µs/op",
                "errors",
                "after/before",
            ],
            rows,
        )
    )
    calls = result["databricks_calls"]
    parts.append(
        table(
            ["revision", "Databricks calls/s", "process CPU s", "calls per CPU second"],
            [
                [
                    side,
                    calls[side]["calls_per_second"],
                    round(calls[side]["cpu_seconds"], 2),
                    calls[side]["calls_per_cpu_second"],
                ]
                for side in sides
            ],
        )
    )
    tracker = result["tracker"]
    parts.append(
        table(
            ["revision", "runs ending at once", "all done after s", "tracker done-writes/s"],
            [
                [
                    side,
                    tracker[side]["runs"],
                    tracker[side]["seconds_to_all_done"],
                    tracker[side]["done_writes_per_second"],
                ]
                for side in sides
            ],
        )
    )
    revision = result["before_revision"]
    parts.append(f"before = revision {revision}" if revision else "before: not available (no git)")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--before", default=BEFORE, help="earlier revision ('' for none)")
    args = parser.parse_args(argv)
    result = run(args.quick, args.before or None)
    print(render(result))
    print(f"wrote {write_result('write_path', result)}")
    return result


if __name__ == "__main__":
    main()
