"""The durable-method workloads on DBOS Transact (SQLite), for benchmarks/durable_vs_dbos.py.

Run by the benchmark in a child process (DBOS keeps process-wide state), with the extra
``bench-dbos`` installed; prints one JSON object on stdout::

    python benchmarks/dbos_workloads.py steps --db /tmp/d.sqlite --workflows 100
    python benchmarks/dbos_workloads.py sleep --db ... --workflows 1000 --seconds 2
    python benchmarks/dbos_workloads.py event --db ... --workflows 20 --poll 1.0
    python benchmarks/dbos_workloads.py crash-start --db ... --workflows 100 --effects F
    python benchmarks/dbos_workloads.py crash-recover --db ... --workflows 100 --effects F

The same shapes as ours: sequential 10-step workflows; workflows sleeping durably; an
external event (``send``) reaching a workflow blocked in ``recv``; 100 workflows of 20
steps of 50 ms killed with -9 and recovered at the next launch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

EFFECTS = Path(os.environ.get("BENCH_EFFECTS", "/dev/null"))
PHASE = os.environ.get("BENCH_PHASE", "")


@sa_event.listens_for(Engine, "connect")
def _wal(dbapi_conn: Any, record: Any) -> None:
    # The configuration the peer's figures were measured with (DBOS's own default is the
    # rollback journal with synchronous=FULL): WAL, synchronous=NORMAL, as our store.
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")


@DBOS.step()
def tiny(index: int) -> int:
    return index


@DBOS.workflow()
def ten_steps(count: int) -> int:
    return sum(tiny(i) for i in range(count))


@DBOS.workflow()
def sleeper(seconds: float) -> float:
    DBOS.sleep(seconds)
    return time.time()


@DBOS.workflow()
def waiter() -> float:
    DBOS.recv("go", timeout_seconds=120)
    return time.time()


@DBOS.step()
def effect(workflow: str, index: int) -> int:
    with EFFECTS.open("a") as log:
        log.write(f"{workflow}/{index} {PHASE} {time.time():.6f}\n")
    time.sleep(0.05)  # the rest of the step's work
    return index


@DBOS.workflow()
def twenty_effects(workflow: str) -> int:
    return sum(effect(workflow, i) for i in range(20))


def _launch(db: str, **config: Any) -> None:
    settings: DBOSConfig = {
        "name": "bench",
        "system_database_url": f"sqlite:///{db}",
        "log_level": "WARNING",
        **config,  # type: ignore[typeddict-item]
    }
    DBOS(config=settings)
    DBOS.launch()


def steps(args: argparse.Namespace) -> dict[str, Any]:
    _launch(args.db)
    ten_steps(10)  # warm up
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.workflows):
        ten_steps(10)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    count = args.workflows * 10
    return {
        "steps": count,
        "steps_per_s": count / wall,
        "ms_per_step": wall / count * 1e3,
        "cpu_ms_per_step": cpu / count * 1e3,
    }


def sleep(args: argparse.Namespace) -> dict[str, Any]:
    _launch(args.db)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    handles = [DBOS.start_workflow(sleeper, args.seconds) for _ in range(args.workflows)]
    last_start = time.time()
    peak = [threading.active_count()]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], threading.active_count())
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    ends = [handle.get_result() for handle in handles]
    done.set()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "workflows": args.workflows,
        "seconds_after_last_start": max(ends) - last_start,
        "peak_threads": peak[0],
        "kb_per_waiting": (after - before) / args.workflows,
    }


def event(args: argparse.Namespace) -> dict[str, Any]:
    _launch(args.db, notification_listener_polling_interval_sec=args.poll)
    latencies = []
    for _ in range(args.workflows):
        handle = DBOS.start_workflow(waiter)
        time.sleep(0.2)  # let it block in recv
        sent = time.time()
        DBOS.send(handle.workflow_id, "now", "go")
        latencies.append(handle.get_result() - sent)
    latencies.sort()
    return {
        "workflows": args.workflows,
        "poll": args.poll,
        "median_ms": latencies[len(latencies) // 2] * 1e3,
    }


def crash_start(args: argparse.Namespace) -> dict[str, Any]:
    _launch(args.db)
    for index in range(args.workflows):
        with SetWorkflowID(f"crash-{index}"):
            DBOS.start_workflow(twenty_effects, f"crash-{index}")
    print(json.dumps({"started": args.workflows}), flush=True)
    time.sleep(3600)  # the benchmark kills this process with -9
    return {}


def crash_recover(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    _launch(args.db)  # recovers this executor's pending workflows
    up = time.time()
    results = [DBOS.retrieve_workflow(f"crash-{i}").get_result() for i in range(args.workflows)]
    return {
        "launched_s": up - started,
        "up_at": up,
        "done_at": time.time(),
        "finished": len(results),
    }


def recorded_steps(db: str) -> list[str]:
    """``workflow/step`` of every step output DBOS stored (for the runs-twice check)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT workflow_uuid, function_id, output FROM operation_outputs"
        ).fetchall()
    return [f"{wf}/{json.loads(out) if out and out[0] != 'g' else fid}" for wf, fid, out in rows]


WORKLOADS = {
    "steps": steps,
    "sleep": sleep,
    "event": event,
    "crash-start": crash_start,
    "crash-recover": crash_recover,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--db", required=True)
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args()
    answer = WORKLOADS[args.workload](args)
    print(json.dumps(answer), flush=True)
    DBOS.destroy(destroy_registry=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
