"""Closed-loop load from separate client processes on loopback: gRPC and HTTP/1.1.

Each client process runs ``concurrency / processes`` callers that each keep one request in
flight, for a warm-up and then a measured window that starts at the same wall-clock moment
in every process. Clients send pre-serialized requests and do not decode answers, so as
little client CPU as possible competes with the server on a small machine.

HTTP load uses wrk when it is installed; otherwise a minimal keep-alive HTTP/1.1 client
(asyncio streams, one connection per caller) in the same multi-process shape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import random
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import latency_summary, wrk_path

#: Latency samples kept per process (a uniform reservoir beyond this).
MAX_SAMPLES = 50_000


@dataclasses.dataclass(frozen=True)
class Load:
    """One load run."""

    concurrency: int
    seconds: float
    warmup: float = 1.0
    processes: int = 2


@dataclasses.dataclass
class LoadResult:
    """What a load run measured."""

    calls: int
    errors: int
    seconds: float
    latencies: list[float]
    tool: str
    server_cpu_us: float = 0.0
    #: Seconds of warm-up load before the measured window.
    warmup: float = 0.0

    @property
    def throughput(self) -> float:
        """Successful calls per second."""
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def served(self) -> float:
        """Calls the server answered, warm-up included (at the measured rate)."""
        return self.calls * (self.seconds + self.warmup) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        """Throughput, p50/p99 and error count."""
        return {
            "throughput": round(self.throughput, 1),
            **latency_summary(self.latencies),
            "calls": self.calls,
            "errors": self.errors,
            "server_cpu_us": round(self.server_cpu_us, 1),
            "tool": self.tool,
        }


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _run_processes(target: Any, load: Load, args: tuple[Any, ...]) -> LoadResult:
    context = multiprocessing.get_context("spawn")
    shares = _split(load.concurrency, load.processes)
    ready = context.Barrier(len(shares) + 1)
    queue = context.Queue()
    start = context.Value("d", 0.0)
    workers = [
        context.Process(target=target, args=(*args, share, load, ready, start, queue))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    ready.wait(60)  # every client connected
    start.value = time.time() + load.warmup
    ready.wait(60)
    results = [queue.get(timeout=load.warmup + load.seconds + 120) for _ in workers]
    for worker in workers:
        worker.join(30)
    latencies: list[float] = []
    for result in results:
        latencies.extend(result["latencies"])
    return LoadResult(
        calls=sum(r["calls"] for r in results),
        errors=sum(r["errors"] for r in results),
        seconds=load.seconds,
        latencies=latencies,
        tool=results[0]["tool"] if results else "",
        warmup=load.warmup,
    )


class _Recorder:
    """Counts calls and keeps latency samples inside the measured window."""

    def __init__(self, begin: float, end: float) -> None:
        self.begin, self.end = begin, end
        self.calls = 0
        self.errors = 0
        self.samples: list[float] = []
        self._rng = random.Random()

    def record(self, sent_wall: float, latency: float, ok: bool) -> None:
        if not self.begin <= sent_wall < self.end:
            return
        if not ok:
            self.errors += 1
            return
        self.calls += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(latency)
        else:
            slot = self._rng.randrange(self.calls)
            if slot < MAX_SAMPLES:
                self.samples[slot] = latency

    def result(self, tool: str) -> dict[str, Any]:
        return {"calls": self.calls, "errors": self.errors, "latencies": self.samples, "tool": tool}


def _install_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


# --- gRPC --------------------------------------------------------------------------------


def grpc_load(target: str, path: str, requests: Sequence[bytes], load: Load) -> LoadResult:
    """Call ``path`` with the pre-serialized ``requests`` (cycled at random)."""
    return _run_processes(_grpc_worker, load, (target, path, list(requests)))


def _grpc_worker(
    target: str,
    path: str,
    requests: list[bytes],
    callers: int,
    load: Load,
    ready: Any,
    start: Any,
    queue: Any,
) -> None:
    _install_loop()
    queue.put(asyncio.run(_grpc_callers(target, path, requests, callers, load, ready, start)))


async def _grpc_callers(
    target: str, path: str, requests: list[bytes], callers: int, load: Load, ready: Any, start: Any
) -> dict[str, Any]:
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(path)  # bytes in, bytes out: no client-side protobuf
        await call(requests[0], timeout=30)
        await asyncio.to_thread(ready.wait, 60)
        await asyncio.to_thread(ready.wait, 60)
        begin = start.value
        end = begin + load.seconds
        recorder = _Recorder(begin, end)

        async def caller(seed: int) -> None:
            rng = random.Random(seed)
            while (now := time.time()) < end:
                t0 = time.perf_counter()
                try:
                    await call(requests[rng.randrange(len(requests))], timeout=30)
                    ok = True
                except grpc.aio.AioRpcError:
                    ok = False
                recorder.record(now, time.perf_counter() - t0, ok)

        await asyncio.gather(*(caller(i) for i in range(callers)))
        return recorder.result("grpc.aio client")


# --- HTTP --------------------------------------------------------------------------------


def http_load(base: str, paths: Sequence[str], load: Load) -> LoadResult:
    """GET the ``paths`` (cycled at random) from ``base`` (``http://host:port``)."""
    wrk = wrk_path()
    if wrk is not None:
        return _wrk(wrk, base, paths, load)
    return _run_processes(_http_worker, load, (base, list(paths)))


def _http_worker(
    base: str, paths: list[str], callers: int, load: Load, ready: Any, start: Any, queue: Any
) -> None:
    _install_loop()
    queue.put(asyncio.run(_http_callers(base, paths, callers, load, ready, start)))


async def _http_callers(
    base: str, paths: list[str], callers: int, load: Load, ready: Any, start: Any
) -> dict[str, Any]:
    host, port = base.removeprefix("http://").split(":")
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]
    streams = [await asyncio.open_connection(host, int(port)) for _ in range(callers)]
    for reader, writer in streams:
        writer.write(requests[0])
        await _read_response(reader)
    await asyncio.to_thread(ready.wait, 60)
    await asyncio.to_thread(ready.wait, 60)
    begin = start.value
    end = begin + load.seconds
    recorder = _Recorder(begin, end)

    async def caller(seed: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rng = random.Random(seed)
        while (now := time.time()) < end:
            t0 = time.perf_counter()
            writer.write(requests[rng.randrange(len(requests))])
            status = await _read_response(reader)
            recorder.record(now, time.perf_counter() - t0, status == 200)

    await asyncio.gather(*(caller(i, r, w) for i, (r, w) in enumerate(streams)))
    for _, writer in streams:
        writer.close()
    return recorder.result("python HTTP/1.1 client (wrk not installed)")


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    await reader.readexactly(length)
    return status


_WRK_SCRIPT = """
local paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%f %%f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(wrk: str, base: str, paths: Sequence[str], load: Load) -> LoadResult:
    sample = list(paths)[:2000]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(_WRK_SCRIPT % ",".join(f'"{p}"' for p in sample))
        # wrk's threads are its client processes; at least one connection per thread.
        threads = max(1, min(load.processes, load.concurrency))
        common = ["-t", str(threads), "-c", str(load.concurrency), "-s", str(script), base]
        # wrk runs for whole seconds.
        warmup, seconds = max(1, round(load.warmup)), max(1, round(load.seconds))
        subprocess.run([wrk, "-d", f"{warmup}s", *common], capture_output=True, check=True)
        answer = subprocess.run(
            [wrk, "-d", f"{seconds}s", *common],
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+)", answer.stdout)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{answer.stdout}")
    calls, errors = int(match.group(1)), int(match.group(2))
    p50, p99 = float(match.group(3)) / 1e6, float(match.group(4)) / 1e6
    # wrk reports percentiles, not samples: two samples reproduce them in the summary.
    return LoadResult(
        calls=calls - errors,
        errors=errors,
        seconds=float(seconds),
        latencies=[p50] * 98 + [p99] * 2,
        tool="wrk",
        warmup=float(warmup),
    )
