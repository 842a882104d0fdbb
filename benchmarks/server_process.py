"""A benchmark server in its own process, driven over stdin/stdout with JSON lines.

``python -m benchmarks.server_process '<config json>'`` starts an Application on loopback
the way ``lro-server serve`` runs it (uvloop), prints ``{"grpc_port", "http_port", "pid"}``,
then answers one JSON command per input line:

- ``{"cmd": "stats"}``: RSS, held waiters, store reads and writes so far;
- ``{"cmd": "complete", "seed": S, "count": N}``: complete those operations through the
  server's store (as the tracker would), answering the wall-clock start and end;
- ``{"cmd": "profile", "seconds": T, "path": P}``: cProfile the loop for T seconds;
- ``{"cmd": "stop"}``.
"""

from __future__ import annotations

import asyncio
import cProfile
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from benchmarks import dataset
from benchmarks.ceiling import constant_operation, with_constant_get
from lro_server.cli.app import AppConfig, Application
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.core.operations import ServiceLimits
from lro_server.databricks.client import DatabricksOptions
from lro_server.storage import SqliteStore

OPERATIONS = "google.longrunning.Operations"


def app_config(raw: dict[str, Any]) -> AppConfig:
    """AppConfig from the JSON the parent sends (nested options as dicts)."""
    values = dict(raw)
    if "limits" in values:
        values["limits"] = ServiceLimits(**values["limits"])
    if "databricks" in values:
        values["databricks"] = DatabricksOptions(**values["databricks"])
    if "resume" in values:
        values["resume"] = ResumeConfig(**values["resume"])
    return AppConfig(**values)


class GcClock:
    """Counts the cyclic garbage collector's passes and the time they take."""

    def __init__(self) -> None:
        self.passes = 0
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.passes += 1
            self.seconds += time.perf_counter() - self._started


GC = GcClock()


def rss_kb() -> int:
    """Resident set size of this process in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _sample(app: Application, name: str, labels: dict[str, str]) -> float:
    value = app.metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


def stats(app: Application) -> dict[str, Any]:
    """What the parent reads between phases."""
    return {
        "rss_kb": rss_kb(),
        "waiters": app.notifier.waiters,
        "store_gets": _sample(app, "lro_store_duration_seconds_count", {"method": "get"}),
        "store_updates": _sample(app, "lro_store_duration_seconds_count", {"method": "update"}),
        "store_creates": _sample(app, "lro_store_duration_seconds_count", {"method": "create"}),
        "json_hits": app.operation_json.hits,
        "json_misses": app.operation_json.misses,
        "databricks_calls": app.databricks.calls,
        "tracked": len(app.tracker.schedule.names()),
        "walks": app.tracker.batcher.batches,
        "gc_passes": GC.passes,
        "gc_seconds": GC.seconds,
        "time": time.time(),
    }


async def complete(app: Application, seed: int, count: int) -> dict[str, Any]:
    """Mark operations done with a response, one compare-and-set write each.

    Yields to the loop after each write, as the tracker does between polls, so answers
    to woken waiters go out while later operations are still being completed.
    """
    started = time.time()
    for index, name in enumerate(dataset.names(seed, count)):
        record = await app.store.get(name)
        done = dataset.operation(name, index, done=True)
        await app.store.update(dataclasses.replace(record, operation=done, state="TERMINATED"))
        await asyncio.sleep(0)
    return {"started": started, "finished": time.time()}


async def serve(config: AppConfig, switches: dict[str, Any]) -> None:
    """Start, report the ports, obey commands until ``stop`` or end of input."""
    methods = with_constant_get if switches.get("benchmark_ceiling") else None
    app = Application(config, methods=methods)
    await app.start()
    _undo_optimisations(app, switches)
    print(json.dumps({"grpc_port": app.grpc_port, "http_port": app.http_port}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            kind = command["cmd"]
            if kind == "stop":
                break
            if kind == "stats":
                answer = stats(app)
            elif kind == "complete":
                answer = await complete(app, command["seed"], command["count"])
            elif kind == "profile":
                profiler = cProfile.Profile()
                profiler.enable()
                await asyncio.sleep(command["seconds"])
                profiler.disable()
                profiler.dump_stats(command["path"])
                answer = {"path": command["path"]}
            else:
                answer = {"error": f"unknown command {kind!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        await app.stop(grace=0.5)


#: Switches of :func:`_undo_optimisations`, and ``benchmark_ceiling``: GetOperation answers
#: a constant (benchmarks/ceiling.py).
SWITCHES = ("render_every_get", "reread_on_wake", "ask_sqlite_every_get", "benchmark_ceiling")


def _undo_optimisations(app: Application, switches: dict[str, Any]) -> None:
    """Put back the behaviour an optimisation replaced, to measure its before/after.

    ``render_every_get``: the HTTP front renders JSON on every read (no cache);
    ``reread_on_wake``: woken waiters read the store instead of taking the writer's record;
    ``ask_sqlite_every_get``: the SQLite store runs ``PRAGMA data_version`` on every read.
    """
    if switches.get("render_every_get"):
        app.operation_json.max_entries = 0
    if switches.get("ask_sqlite_every_get"):
        store: Any = app.store
        while not isinstance(store, SqliteStore):
            store = store.inner
        store.data_version.close()  # without the mapping it asks SQLite every time
    if switches.get("reread_on_wake"):
        notify = app.notifier.notify
        app.notifier.notify = lambda name, record=None: notify(name)  # type: ignore[method-assign]


async def serve_plain(host: str, port: int) -> None:
    """The reference: a bare grpc.aio server answering GetOperation with the ceiling's
    Operation, pre-serialized, whatever the request (no registry, wrappers, metrics, auth,
    log context or other services); obeys ``stop`` like :func:`serve`."""
    answer = constant_operation().SerializeToString()

    async def get_operation(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return answer

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    handler = grpc.unary_unary_rpc_method_handler(get_operation)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(OPERATIONS, {"GetOperation": handler}),)
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(json.dumps({"grpc_port": bound, "http_port": 0}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or json.loads(line)["cmd"] == "stop":
                break
            print(json.dumps({"rss_kb": rss_kb(), "time": time.time()}), flush=True)
    finally:
        await server.stop(0.5)


def main() -> None:
    """Entry point of the child process."""
    raw = json.loads(sys.argv[1])
    if raw.pop("plain_grpc", False):
        # The same loop as the server it is the reference of (lro-server serve: uvloop).
        run = _runner()
        run(serve_plain(raw.get("host", "127.0.0.1"), raw.get("grpc_port", 0)))
        return
    switches = {k: raw.pop(k) for k in SWITCHES if k in raw}
    config = app_config(raw)
    _runner()(serve(config, switches))


def _runner() -> Any:
    try:
        import uvloop
    except ImportError:  # the same fallback as lro-server serve
        return asyncio.run
    return uvloop.run


if __name__ == "__main__":
    main()
