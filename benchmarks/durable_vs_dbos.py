"""Durable methods against DBOS Transact, the same workloads in one run, on SQLite.

Ours: ``lro-server serve --methods benchmarks.durable_workloads`` in a child process on
the embedded SQLite store (WAL, synchronous=NORMAL), driven over gRPC. DBOS 3.4 (extra
``bench-dbos``) runs benchmarks/dbos_workloads.py in child processes on its SQLite system
database, set to WAL and synchronous=NORMAL as well. Every figure of the issue's targets
is printed, with the ratio to DBOS measured in this run where DBOS has the same workload:

- ``ctx.step`` overhead per step (sequential 10-step methods) and steps/s;
- kill -9 with 100 methods in flight (20 steps of 50 ms each): first resumed step after
  the restarted server is up, time to finish all, recorded steps run twice (must be 0);
- 1,000 methods sleeping 2 s: all done after the last start, threads, memory per waiting
  method, and (full run) 10,000 waiting at once;
- ResolvePromise → method resumed, and child done → parent resumed (medians);
- CPU of one replay of a 1,000-step journal (in-process engine on SQLite).

Usage: ``python benchmarks/durable_vs_dbos.py [--quick]``. Prints a table, writes JSON to
benchmarks/results/. Targets are reported, not asserted (figures depend on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import git_revision, machine, table, write_result  # noqa: E402
from lro_server._proto.lro.durable.v1 import methods_pb2, methods_pb2_grpc  # noqa: E402

BANNER = re.compile(r"gRPC on ([\w.\-]+):(\d+), HTTP/JSON on (http://[\w.\-]+:\d+)")
DBOS_SCRIPT = ROOT / "benchmarks" / "dbos_workloads.py"
#: Seconds after the last start at which the crash scenario kills the process (each method
#: runs 20 steps of 50 ms: about half are done).
KILL_AFTER = 0.5


class Server:
    """``lro-server serve`` in a child process, on free loopback ports."""

    def __init__(self, store: str, env: dict[str, str], log: Path) -> None:
        self.store, self.env, self.log = store, env, log
        self.process: subprocess.Popen[str] | None = None
        self.target = ""
        self.spawned = self.up = 0.0

    def start(self) -> Server:
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LRO_HOST": "127.0.0.1",
            "LRO_LOG_LEVEL": "WARNING",
            "LRO_LOG_FORMAT": "text",
            "LRO_METHODS": "benchmarks.durable_workloads",
            "LRO_MAX_WAITERS": "50000",
            **self.env,
        }
        self.spawned = time.time()
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
            env=environment,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        with self.log.open("a") as log:
            for line in self.process.stdout:
                log.write(line)
                match = BANNER.search(line)
                if match:
                    self.up = time.time()
                    self.target = f"{match.group(1)}:{match.group(2)}"
                    break
        if not self.target:
            raise RuntimeError(f"the server did not start: see {self.log}")
        # Keep draining its output so it never blocks on a full pipe.
        ThreadPoolExecutor(1).submit(self._drain)
        return self

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log.open("a") as log:
            for line in self.process.stdout:
                log.write(line)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


# -- our side ----------------------------------------------------------------------------


def _start(channel: grpc.Channel, method: str, request: dict[str, Any]) -> Any:
    message = methods_pb2.StartRequest(method=method)
    message.input.update(request)
    message.timeout.CopyFrom(duration_pb2.Duration(seconds=3600))
    return methods_pb2_grpc.MethodsStub(channel).Start.future(message, timeout=60)


def _wait(channel: grpc.Channel, name: str, timeout: float = 300) -> operations_pb2.Operation:
    stub = operations_pb2_grpc.OperationsStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        request = operations_pb2.WaitOperationRequest(name=name)
        request.timeout.FromSeconds(30)
        operation = stub.WaitOperation(request, timeout=40)
        if operation.done or time.monotonic() > deadline:
            return operation


def _struct(operation: operations_pb2.Operation) -> dict[str, Any]:
    from google.protobuf import json_format, struct_pb2

    if operation.HasField("error"):
        raise RuntimeError(f"{operation.name} failed: {operation.error.message}")
    found = struct_pb2.Struct()
    operation.response.Unpack(found)
    return dict(json_format.MessageToDict(found))


def _metadata(channel: grpc.Channel, name: str) -> methods_pb2.MethodMetadata:
    got = operations_pb2_grpc.OperationsStub(channel).GetOperation(
        operations_pb2.GetOperationRequest(name=name), timeout=30
    )
    found = methods_pb2.MethodMetadata()
    got.metadata.Unpack(found)
    return found


def ours_steps(server: Server, channel: grpc.Channel, methods: int) -> dict[str, float]:
    def run(steps: int, sync: bool = False) -> tuple[float, float]:
        cpu, wall = server.cpu_seconds(), time.perf_counter()
        for _ in range(methods):
            _wait(
                channel,
                _start(channel, "bench.Steps", {"steps": steps, "sync": sync}).result().name,
            )
        return time.perf_counter() - wall, server.cpu_seconds() - cpu

    run(10)  # warm up
    wall10, cpu10 = run(10)
    wall0, _ = run(0)
    wall_sync, _ = run(10, sync=True)
    count = methods * 10
    return {
        "steps_per_s": count / wall10,
        "ms_per_step": wall10 / count * 1e3,
        "overhead_ms_per_step": max(0.0, wall10 - wall0) / count * 1e3,
        "overhead_ms_per_sync_step": max(0.0, wall_sync - wall0) / count * 1e3,
        "server_cpu_ms_per_step": cpu10 / count * 1e3,
    }


def ours_sleep(server: Server, channel: grpc.Channel, methods: int) -> dict[str, float]:
    futures = [_start(channel, "bench.Sleep", {"seconds": 2}) for _ in range(methods)]
    names = [future.result().name for future in futures]
    last_start = time.time()
    threads = server.threads()
    with ThreadPoolExecutor(32) as pool:
        done = list(pool.map(lambda n: _struct(_wait(channel, n)), names))
    return {
        "seconds_after_last_start": max(d["woke"] for d in done) - last_start,
        "server_threads": threads,
    }


def ours_waiting(server: Server, channel: grpc.Channel, methods: int) -> dict[str, float]:
    before = server.rss_kb()
    threads_before = server.threads()
    pending = []
    for _ in range(methods):
        pending.append(_start(channel, "bench.Sleep", {"seconds": 3000}))
        if len(pending) >= 200:
            [future.result() for future in pending]
            pending = []
    [future.result() for future in pending]
    stub = operations_pb2_grpc.OperationsStub(channel)
    flt = 'done = false AND metadata.state = "WAITING"'
    for _ in range(600):
        total, token = 0, ""
        while True:
            page = stub.ListOperations(
                operations_pb2.ListOperationsRequest(
                    name="operations", filter=flt, page_size=1000, page_token=token
                ),
                timeout=60,
            )
            total += len(page.operations)
            token = page.next_page_token
            if not token:
                break
        if total >= methods:
            break
        time.sleep(0.5)
    return {
        "waiting": total,
        "kb_per_waiting": (server.rss_kb() - before) / methods,
        "threads_added": server.threads() - threads_before,
    }


def ours_promise(channel: grpc.Channel, methods: int) -> float:
    latencies = []
    stub = methods_pb2_grpc.MethodsStub(channel)
    for _ in range(methods):
        name = _start(channel, "bench.Promise", {}).result().name
        promise = ""
        while not promise:
            waiting = _metadata(channel, name).waiting_on
            promise = next((w for w in waiting if not w.startswith("operations/")), "")
            time.sleep(0.01)
        sent = time.time()
        stub.ResolvePromise(methods_pb2.ResolvePromiseRequest(name=promise, value={}), timeout=30)
        latencies.append(_struct(_wait(channel, name))["resumed"] - sent)
    return statistics.median(latencies) * 1e3


def ours_child(channel: grpc.Channel, job_id: int, methods: int) -> float:
    """Median of: the parent's first step after the child ended, minus the moment a held
    WaitOperation on the child returned (at or just after the child's final commit)."""
    latencies = []
    stub = operations_pb2_grpc.OperationsStub(channel)
    for _ in range(methods):
        name = _start(channel, "bench.Child", {"job_id": job_id}).result().name
        child = ""
        while not child:
            child = next((s.operation for s in _metadata(channel, name).steps if s.operation), "")
            time.sleep(0.005)
        request = operations_pb2.WaitOperationRequest(name=child)
        request.timeout.FromSeconds(60)
        while not stub.WaitOperation(request, timeout=70).done:
            pass
        seen = time.time()
        latencies.append(_struct(_wait(channel, name))["resumed"] - seen)
    return statistics.median(latencies) * 1e3


def ours_crash(tmp: Path, methods: int) -> dict[str, float]:
    effects = tmp / "effects.log"
    store = f"sqlite:///{tmp}/crash.db"
    env = {"BENCH_EFFECTS": str(effects), "BENCH_PHASE": "1"}
    first = Server(store, env, tmp / "crash-1.log").start()
    with grpc.insecure_channel(first.target) as channel:
        futures = [_start(channel, "bench.Effects", {}) for _ in range(methods)]
        names = [future.result().name for future in futures]
    time.sleep(KILL_AFTER)
    first.kill()
    with sqlite3.connect(f"{tmp}/crash.db") as conn:
        recorded = {
            f"{name.split('/')[1]}/{json.loads(data)['pos']}"
            for name, data in conn.execute("SELECT name, data FROM journal")
            if json.loads(data)["kind"] == "STEP_DONE"
        }
    env["BENCH_PHASE"] = "2"
    second = Server(store, env, tmp / "crash-2.log").start()
    try:
        with grpc.insecure_channel(second.target) as channel:
            for name in names:
                _wait(channel, name)
        finished = time.time()
    finally:
        second.stop()
    lines = [line.split() for line in effects.read_text().splitlines()]
    after = sorted(float(t) for _, phase, t in lines if phase == "2")
    first_keys = {key for key, phase, _ in lines if phase == "1"}
    again = [key for key, phase, _ in lines if phase == "2" and key in first_keys]
    return {
        # Recovery runs while the server starts: a step may begin before the banner (0).
        "first_step_after_up_s": max(0.0, after[0] - second.up) if after else float("nan"),
        "first_step_after_spawn_s": after[0] - second.spawned if after else float("nan"),
        "all_done_after_up_s": finished - second.up,
        "recorded_run_twice": sum(1 for key in again if key in recorded),
        "unrecorded_run_again": sum(1 for key in again if key not in recorded),
        "recorded_at_kill": len(recorded),
    }


def ours_replay(steps: int) -> float:
    """CPU ms of one replay of a ``steps``-step journal (engine in-process, SQLite)."""
    from benchmarks.replay_rig import replay_cpu_ms

    return asyncio.run(replay_cpu_ms(steps))


# -- DBOS ----------------------------------------------------------------------------------


def dbos_python() -> tuple[str, str]:
    """The interpreter that can import dbos, or "" and why not."""
    candidates = [
        os.environ.get("LRO_BENCH_DBOS_PYTHON", ""),
        sys.executable,
        str(ROOT / ".venv-dbos" / "bin" / "python"),
    ]
    for candidate in filter(None, candidates):
        check = subprocess.run(
            [candidate, "-c", "import dbos; print(dbos.__name__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode == 0:
            return candidate, ""
    return "", "DBOS is not installed (make bench installs the bench-dbos extra)"


def dbos(python: str, workload: str, tmp: Path, **flags: Any) -> dict[str, Any]:
    db = tmp / f"dbos-{workload}-{time.monotonic_ns()}.sqlite"
    args = [python, str(DBOS_SCRIPT), workload, "--db", str(db)]
    for key, value in flags.items():
        args += [f"--{key}", str(value)]
    answer = subprocess.run(
        args, capture_output=True, text=True, check=False, cwd=tmp, timeout=1800
    )
    if answer.returncode != 0:
        raise RuntimeError(f"DBOS {workload} failed: {answer.stderr[-2000:]}")
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def dbos_crash(python: str, tmp: Path, workflows: int) -> dict[str, Any]:
    db, effects = tmp / "dbos-crash.sqlite", tmp / "dbos-effects.log"
    env = {**os.environ, "BENCH_EFFECTS": str(effects), "BENCH_PHASE": "1"}
    first = subprocess.Popen(
        [python, str(DBOS_SCRIPT), "crash-start", "--db", str(db), "--workflows", str(workflows)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
    )
    assert first.stdout is not None
    first.stdout.readline()  # {"started": N}
    time.sleep(KILL_AFTER)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    env["BENCH_PHASE"] = "2"
    spawned = time.time()
    answer = subprocess.run(
        [python, str(DBOS_SCRIPT), "crash-recover", "--db", str(db), "--workflows", str(workflows)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp,
        timeout=600,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"DBOS crash-recover failed: {answer.stderr[-2000:]}")
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    lines = [line.split() for line in effects.read_text().splitlines()]
    after = sorted(float(t) for _, phase, t in lines if phase == "2")
    first_keys = {key for key, phase, _ in lines if phase == "1"}
    return {
        "first_step_after_up_s": after[0] - result["up_at"] if after else float("nan"),
        "first_step_after_spawn_s": after[0] - spawned if after else float("nan"),
        "all_done_after_up_s": result["done_at"] - result["up_at"],
        "run_again": sum(1 for key, phase, _ in lines if phase == "2" and key in first_keys),
    }


# -- the run -------------------------------------------------------------------------------


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
                results["ours_steps"] = ours_steps(server, channel, sizes["steps"])
                results["ours_sleep"] = ours_sleep(server, channel, sizes["sleep"])
                results["ours_promise_ms"] = ours_promise(channel, sizes["promise"])
                results["ours_child_ms"] = ours_child(channel, job, sizes["child"])
                results["ours_waiting"] = ours_waiting(server, channel, sizes["waiting"])
        finally:
            server.kill()
        results["ours_crash"] = ours_crash(tmp, sizes["crash"])
        results["ours_replay_cpu_ms"] = ours_replay(sizes["replay"])
        if python:
            results["dbos_steps"] = dbos(python, "steps", tmp, workflows=sizes["steps"])
            results["dbos_sleep"] = dbos(python, "sleep", tmp, workflows=sizes["sleep"])
            results["dbos_event_ms"] = dbos(python, "event", tmp, workflows=5, poll=1.0)[
                "median_ms"
            ]
            results["dbos_event_tuned_ms"] = dbos(
                python, "event", tmp, workflows=sizes["promise"], poll=0.01
            )["median_ms"]
            results["dbos_crash"] = dbos_crash(python, tmp, sizes["crash"])
    _report(results)
    path = write_result(
        "durable_vs_dbos",
        {"revision": git_revision(), "machine": machine(), "quick": quick, **results},
    )
    print(f"wrote {path}")
    return 0


def _report(r: dict[str, Any]) -> None:
    d = {k: r.get(k) for k in ("dbos_steps", "dbos_sleep", "dbos_crash")}
    has = r["dbos"].startswith("3.4")

    def ratio(ours: float, theirs: float | None, higher_is_better: bool = False) -> str:
        if not has or theirs is None or not ours:
            return "n/a"
        return f"{(ours / theirs) if higher_is_better else (theirs / ours):.1f}x"

    s, sl, c = r["ours_steps"], r["ours_sleep"], r["ours_crash"]
    ds = d["dbos_steps"] or {}
    dsl = d["dbos_sleep"] or {}
    dc = d["dbos_crash"] or {}
    rows = [
        [
            "steps/s, sequential 10-step methods",
            f"{s['steps_per_s']:.0f}",
            f"{ds.get('steps_per_s', 0):.0f}" if has else "n/a",
            ratio(s["steps_per_s"], ds.get("steps_per_s"), True),
            ">= 3x",
        ],
        [
            "wall ms per step (whole method)",
            f"{s['ms_per_step']:.3f}",
            f"{ds.get('ms_per_step', 0):.3f}" if has else "n/a",
            ratio(s["ms_per_step"], ds.get("ms_per_step")),
            "",
        ],
        [
            "ctx.step overhead ms (async step)",
            f"{s['overhead_ms_per_step']:.3f}",
            "",
            "",
            "<= 0.35",
        ],
        [
            "ctx.step overhead ms (sync step, thread)",
            f"{s['overhead_ms_per_sync_step']:.3f}",
            "",
            "",
            "",
        ],
        [
            "server CPU ms per step",
            f"{s['server_cpu_ms_per_step']:.3f}",
            f"{ds.get('cpu_ms_per_step', 0):.3f}" if has else "n/a",
            "",
            "",
        ],
        [
            "kill -9: first step after up, s",
            f"{c['first_step_after_up_s']:.3f}",
            f"{dc.get('first_step_after_up_s', 0):.3f}" if has else "n/a",
            ratio(c["first_step_after_up_s"], dc.get("first_step_after_up_s")),
            "<= 0.2",
        ],
        [
            "kill -9: first step after spawn, s",
            f"{c['first_step_after_spawn_s']:.3f}",
            f"{dc.get('first_step_after_spawn_s', 0):.3f}" if has else "n/a",
            "",
            "",
        ],
        [
            "kill -9: all done after up, s",
            f"{c['all_done_after_up_s']:.2f}",
            f"{dc.get('all_done_after_up_s', 0):.2f}" if has else "n/a",
            ratio(c["all_done_after_up_s"], dc.get("all_done_after_up_s")),
            "",
        ],
        ["kill -9: recorded steps run twice", c["recorded_run_twice"], "", "", "0"],
        [
            "kill -9: unrecorded steps run again",
            c["unrecorded_run_again"],
            dc.get("run_again", "n/a") if has else "n/a",
            "",
            "(at-least-once)",
        ],
        [
            f"{r['sizes']['sleep']} sleeping 2 s: done after last start, s",
            f"{sl['seconds_after_last_start']:.2f}",
            f"{dsl.get('seconds_after_last_start', 0):.2f}" if has else "n/a",
            ratio(sl["seconds_after_last_start"], dsl.get("seconds_after_last_start")),
            "<= 3",
        ],
        [
            "  threads (server / DBOS peak)",
            sl["server_threads"],
            dsl.get("peak_threads", "n/a") if has else "n/a",
            "",
            "no thread per method",
        ],
        [
            f"{r['ours_waiting']['waiting']} waiting at once: KB per method",
            f"{r['ours_waiting']['kb_per_waiting']:.1f}",
            "",
            "",
            "<= 30",
        ],
        [
            "ResolvePromise -> resumed, median ms",
            f"{r['ours_promise_ms']:.1f}",
            f"{r.get('dbos_event_ms', 0):.1f} / {r.get('dbos_event_tuned_ms', 0):.1f}"
            if has
            else "n/a",
            ratio(r["ours_promise_ms"], r.get("dbos_event_tuned_ms")),
            "<= 10",
        ],
        ["child done -> parent resumed, median ms", f"{r['ours_child_ms']:.1f}", "", "", "<= 50"],
        [
            "replay of a 1,000-step journal, CPU ms",
            f"{r['ours_replay_cpu_ms']:.1f}",
            "",
            "",
            "<= 20",
        ],
    ]
    print(f"DBOS: {r['dbos']}")
    print(table(["figure", "lro-server", "DBOS", "ratio", "target"], rows))


if __name__ == "__main__":
    sys.exit(main())
