"""Our side of the durable benchmark: ``lro-server serve`` in a child process on SQLite,
and the workloads of benchmarks/durable_vs_dbos.py driven over gRPC."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from lro_server._proto.lro.durable.v1 import methods_pb2, methods_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
BANNER = re.compile(r"gRPC on ([\w.\-]+):(\d+), HTTP/JSON on (http://[\w.\-]+:\d+)")
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


def read_effects(path: Path) -> tuple[list[float], list[str]]:
    """The effects log of a crash scenario (``key phase time`` lines): the times of the
    steps run after the restart (phase 2), sorted, and the keys of the steps run before
    the kill (phase 1) that ran again after it."""
    lines = [line.split() for line in path.read_text().splitlines()]
    after = sorted(float(t) for _, phase, t in lines if phase == "2")
    first_keys = {key for key, phase, _ in lines if phase == "1"}
    again = [key for key, phase, _ in lines if phase == "2" and key in first_keys]
    return after, again


@functools.lru_cache(maxsize=8)
def _methods(channel: grpc.Channel) -> methods_pb2_grpc.MethodsStub:
    """The channel's stub, made once (as a client holds it; making one costs ~10 µs)."""
    return methods_pb2_grpc.MethodsStub(channel)


@functools.lru_cache(maxsize=8)
def _operations(channel: grpc.Channel) -> operations_pb2_grpc.OperationsStub:
    """The channel's Operations stub, made once."""
    return operations_pb2_grpc.OperationsStub(channel)


def _start_request(method: str, request: dict[str, Any]) -> methods_pb2.StartRequest:
    message = methods_pb2.StartRequest(method=method)
    message.input.update(request)
    message.timeout.CopyFrom(duration_pb2.Duration(seconds=3600))
    return message


def _start(channel: grpc.Channel, method: str, request: dict[str, Any]) -> Any:
    return _methods(channel).Start.future(_start_request(method, request), timeout=60)


def _start_now(channel: grpc.Channel, method: str, request: dict[str, Any]) -> Any:
    return _methods(channel).Start(_start_request(method, request), timeout=60)


def _wait(channel: grpc.Channel, name: str, timeout: float = 300) -> operations_pb2.Operation:
    stub = _operations(channel)
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
            # A blocking call, as a sequential client makes it: a future's result() costs
            # the client a thread hand-off per call (docs/performance.md).
            _wait(channel, _start_now(channel, "bench.Steps", {"steps": steps, "sync": sync}).name)
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
    after, again = read_effects(effects)
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
