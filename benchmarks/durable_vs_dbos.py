"""Durable methods against DBOS Transact, the same workloads in one run, on SQLite.

Ours: ``lro-server serve --methods benchmarks.durable_workloads`` in a child process on
the embedded SQLite store (WAL, synchronous=NORMAL), driven over gRPC. DBOS 3.4 (extra
``bench-dbos``) runs benchmarks/dbos_workloads.py in child processes on its SQLite system
database, set to WAL and synchronous=NORMAL as well. Every figure of the issue's targets
is printed, with the ratio to DBOS measured in this run where DBOS has the same workload:

- ``ctx.step`` overhead per step (sequential 10-step methods) and steps/s, in rounds that
  alternate ours and DBOS (load from other work drifts over seconds and hits both sides of
  a round alike): each figure is the median over the rounds, the ratio the median of the
  rounds' ratios;
- kill -9 with 100 methods in flight (20 steps of 50 ms each): first resumed step after
  the restarted server is up, time to finish all, recorded steps run twice (must be 0);
- 1,000 methods sleeping 2 s: all done after the last start, threads, memory per waiting
  method, and (full run) 10,000 waiting at once;
- ResolvePromise → method resumed, and child done → parent resumed (medians);
- CPU of one replay of a 1,000-step journal (in-process engine on SQLite).

Our side is benchmarks/durable_ours.py, DBOS's benchmarks/durable_dbos.py, the table
benchmarks/durable_report.py.

Usage: ``python benchmarks/durable_vs_dbos.py [--quick]``. Prints a table, writes JSON to
benchmarks/results/. Targets are reported, not asserted (figures depend on the machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import git_revision, machine, write_result  # noqa: E402
from benchmarks.durable_dbos import dbos, dbos_crash, dbos_python  # noqa: E402
from benchmarks.durable_ours import (  # noqa: E402
    Server,
    ours_child,
    ours_crash,
    ours_promise,
    ours_replay,
    ours_sleep,
    ours_steps,
    ours_waiting,
)
from benchmarks.durable_report import report  # noqa: E402

#: Rounds of the steps workload, each ours then DBOS's.
STEP_ROUNDS = 5


def steps_rounds(
    server: Server, channel: grpc.Channel, python: str, tmp: Path, methods: int, rounds: int
) -> dict[str, Any]:
    """The steps workload of both sides, alternated: medians and the rounds' ratios."""
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, Any]] = []
    for _ in range(rounds):
        ours.append(ours_steps(server, channel, methods))
        if python:
            theirs.append(dbos(python, "steps", tmp, workflows=methods))
    out: dict[str, Any] = {"ours_steps": _medians(ours)}
    if theirs:
        out["dbos_steps"] = _medians(theirs)
        out["steps_ratios"] = [
            mine["steps_per_s"] / other["steps_per_s"]
            for mine, other in zip(ours, theirs, strict=True)
        ]
    return out


def _medians(rounds: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads (seconds)")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = {
        "steps": 20 if quick else 100,
        "sleep": 200 if quick else 1000,
        "waiting": 1000 if quick else 10000,
        "promise": 10 if quick else 50,
        "child": 5 if quick else 30,
        "crash": 20 if quick else 100,
        "replay": 1000,
    }
    python, why_not = dbos_python()
    results: dict[str, Any] = {"sizes": sizes, "dbos": why_not or "3.4 (SQLite, WAL)"}
    from lro_server.testing.databricks_sim import SimulatorThread

    with tempfile.TemporaryDirectory(prefix="durable-bench-") as raw, SimulatorThread() as sim:
        tmp = Path(raw)
        import requests

        job = requests.post(
            f"{sim.url}/api/2.2/jobs/create",
            json={
                "name": "b",
                "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/b"}}],
            },
            headers={"Authorization": "Bearer bench"},
            timeout=10,
        ).json()["job_id"]
        env = {
            "DATABRICKS_HOST": sim.url,
            "DATABRICKS_TOKEN": "bench",
            "LRO_POLL_INTERVAL_SECONDS": "0.05",
            "LRO_MAX_POLL_INTERVAL_SECONDS": "0.2",
            "LRO_DATABRICKS_REQUESTS_PER_SECOND": "1000",
        }
        server = Server(f"sqlite:///{tmp}/lro.db", env, tmp / "server.log").start()
        try:
            with grpc.insecure_channel(server.target) as channel:
                rounds = 3 if quick else STEP_ROUNDS
                results.update(steps_rounds(server, channel, python, tmp, sizes["steps"], rounds))
                results["ours_sleep"] = ours_sleep(server, channel, sizes["sleep"])
                results["ours_promise_ms"] = ours_promise(channel, sizes["promise"])
                results["ours_child_ms"] = ours_child(channel, job, sizes["child"])
                results["ours_waiting"] = ours_waiting(server, channel, sizes["waiting"])
        finally:
            server.kill()
        results["ours_crash"] = ours_crash(tmp, sizes["crash"])
        results["ours_replay_cpu_ms"] = ours_replay(sizes["replay"])
        if python:
            results["dbos_sleep"] = dbos(python, "sleep", tmp, workflows=sizes["sleep"])
            results["dbos_event_ms"] = dbos(python, "event", tmp, workflows=5, poll=1.0)[
                "median_ms"
            ]
            results["dbos_event_tuned_ms"] = dbos(
                python, "event", tmp, workflows=sizes["promise"], poll=0.01
            )["median_ms"]
            results["dbos_crash"] = dbos_crash(python, tmp, sizes["crash"])
    report(results)
    path = write_result(
        "durable_vs_dbos",
        {"revision": git_revision(), "machine": machine(), "quick": quick, **results},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
