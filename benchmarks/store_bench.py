"""Store benchmark: create, get, compare-and-set update and list-page on SQLite and Spanner.

Both backends run in one process, side by side, with the same workload: latency (p50,
p99) of each operation issued one at a time, then throughput with ``--concurrency``
callers. Spanner runs on the Cloud Spanner emulator (started here, on a free loopback
port), so its figures measure the client library, the thread pool and the emulator --
not Cloud Spanner, whose latencies are network-bound (a few ms per read, more per commit).

Usage::

    python benchmarks/store_bench.py            # full run
    python benchmarks/store_bench.py --quick    # a few seconds
    python benchmarks/store_bench.py --backend sqlite

Prints a table and writes JSON to benchmarks/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import duration_pb2

from lro_server.core.errors import LroError
from lro_server.core.names import new_operation_name
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery, OperationStore
from lro_server.storage.sqlite import SqliteStore

RESULTS = Path(__file__).resolve().parent / "results"
PAGE_SIZE = 50


@dataclasses.dataclass(frozen=True)
class Workload:
    """How much of each operation to run."""

    records: int  # created (sequentially, timed) before the other operations
    gets: int
    updates: int
    pages: int
    throughput_ops: int  # per operation kind, spread over the concurrent callers
    concurrency: int


QUICK = Workload(records=150, gets=150, updates=80, pages=30, throughput_ops=150, concurrency=8)
FULL = Workload(
    records=1000, gets=2000, updates=500, pages=200, throughput_ops=2000, concurrency=16
)


def new_record(index: int) -> OperationRecord:
    """A typical running operation: small metadata, a work description, no checkpoint."""
    operation = operations_pb2.Operation(name=new_operation_name())
    operation.metadata.Pack(duration_pb2.Duration(seconds=index))
    return OperationRecord(
        operation=operation,
        owner="bench@example.com",
        method="lro.databricks.v1.Jobs/RunNow",
        state="RUNNING",
        family="jobs",
        payload=json.dumps(
            {"action": "run_now", "request": {"job_id": 42}, "entity": {"run_id": index}}
        ),
    )


def summarize(samples: list[float]) -> dict[str, float]:
    """p50/p99/mean in milliseconds of per-call durations in seconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": p99 * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
    }


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    """Run ``calls`` one after another; return each one's duration."""
    durations = []
    for call in calls:
        start = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - start)
    return durations


async def throughput(
    calls: list[Callable[[], Awaitable[Any]]], concurrency: int, errors: dict[str, int], op: str
) -> float:
    """Run ``calls`` with ``concurrency`` callers; return successful calls per second.

    Failed calls are counted in ``errors[op]``: the emulator runs one read-write
    transaction at a time and aborts the others, so under concurrency a write can use up
    its retry budget and fail with Unavailable. Cloud Spanner does not behave like that.
    """
    queue = list(reversed(calls))
    failed = 0

    async def caller() -> None:
        nonlocal failed
        while queue:
            try:
                await queue.pop()()
            except LroError:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    errors[op] = failed
    return (len(calls) - failed) / (time.perf_counter() - start)


async def bench_store(store: OperationStore, work: Workload) -> dict[str, Any]:
    """Every measurement on one (empty) store."""
    results: dict[str, Any] = {}
    created: list[OperationRecord] = []

    async def create(index: int) -> None:
        record, _ = await store.create(new_record(index))
        created.append(record)

    results["create"] = summarize(await timed([partial(create, i) for i in range(work.records)]))
    names = [r.name for r in created]
    results["get"] = summarize(
        await timed([partial(store.get, names[i % len(names)]) for i in range(work.gets)])
    )

    async def cas_update(name: str) -> None:
        current = await store.get(name)
        await store.update(dataclasses.replace(current, state="UPDATED"))

    # Distinct records per update: measures the write path, not contention.
    results["cas_update"] = summarize(
        await timed([partial(cas_update, names[i % len(names)]) for i in range(work.updates)])
    )
    page = ListQuery(filter=None, owner="bench@example.com", after=None, limit=PAGE_SIZE)
    results["list_page"] = summarize(await timed([partial(store.list, page)] * work.pages))

    ops = work.throughput_ops
    errors: dict[str, int] = {}
    rates = {}
    rates["create"] = await throughput(
        [partial(create, work.records + i) for i in range(ops)], work.concurrency, errors, "create"
    )
    rates["get"] = await throughput(
        [partial(store.get, names[i % len(names)]) for i in range(ops)],
        work.concurrency,
        errors,
        "get",
    )
    # Distinct records per concurrent update, so compare-and-set conflicts stay rare.
    rates["cas_update"] = await throughput(
        [partial(cas_update, names[i % len(names)]) for i in range(ops // 4)],
        work.concurrency,
        errors,
        "cas_update",
    )
    rates["list_page"] = await throughput(
        [partial(store.list, page)] * (ops // 4), work.concurrency, errors, "list_page"
    )
    results["throughput_per_s"] = rates
    results["throughput_errors"] = errors
    return results


@contextlib.asynccontextmanager
async def sqlite_store(workdir: Path) -> AsyncIterator[OperationStore]:
    """A fresh SQLite file store."""
    store = SqliteStore(workdir / "bench.db")
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def spanner_store(workdir: Path, threads: int) -> AsyncIterator[OperationStore]:
    """A fresh database on a private emulator."""
    from lro_server.storage.spanner_open import open_spanner_store
    from lro_server.testing.spanner_emulator import SpannerEmulator

    with SpannerEmulator() as emulator, emulator.activated():
        url = emulator.create_database()
        store = await open_spanner_store(url, threads=threads)
        try:
            yield store
        finally:
            await store.close()
            emulator.drop_database(url)


def render(results: dict[str, dict[str, Any]]) -> str:
    """The side-by-side table."""
    backends = list(results)
    lines = [
        f"{'operation':<12}"
        + "".join(f"{b + ' p50 ms':>18}{b + ' p99 ms':>18}{b + ' ops/s':>16}" for b in backends)
    ]
    for op in ("create", "get", "cas_update", "list_page"):
        row = f"{op:<12}"
        for backend in backends:
            latency = results[backend][op]
            rate = results[backend]["throughput_per_s"][op]
            row += f"{latency['p50_ms']:>18.3f}{latency['p99_ms']:>18.3f}{rate:>16.0f}"
        lines.append(row)
    for backend in backends:
        failed = {op: n for op, n in results[backend]["throughput_errors"].items() if n}
        if failed:
            lines.append(f"{backend}: calls that failed under concurrency: {failed}")
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workload (a few seconds)")
    parser.add_argument(
        "--backend", choices=["sqlite", "spanner"], action="append", help="repeatable"
    )
    parser.add_argument("--threads", type=int, default=16, help="Spanner thread pool size")
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    work = QUICK if args.quick else FULL
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend or ["sqlite", "spanner"]:
            opener = (
                sqlite_store(Path(tmp))
                if backend == "sqlite"
                else spanner_store(Path(tmp), args.threads)
            )
            async with opener as store:
                results[backend] = await bench_store(store, work)
    print(f"workload: {dataclasses.asdict(work)}")
    print(render(results))
    output = args.output or RESULTS / f"store_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "store",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "workload": dataclasses.asdict(work),
        "spanner_threads": args.threads,
        "results": results,
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
