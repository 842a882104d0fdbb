"""Serving: GetOperation on the real server (SQLite, 100,000 stored operations) against the
ceiling (the same server answering a constant Operation), over gRPC and the HTTP front.

Both servers run in child processes under uvloop, as ``lro-server serve`` does; load comes
from separate client processes (see :mod:`benchmarks.load`). Clients read a working set of
1,000 operations at random (the operations clients are polling); the full run also reads
uniformly over all stored operations (a cold page cache) at concurrency 16.

Each point alternates ceiling and real for a few rounds and reports the median of the
per-round ratios: load from other work on a shared machine drifts over seconds and hits
both sides of a round alike.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from google.longrunning import operations_pb2

from benchmarks import dataset
from benchmarks.common import table, write_result
from benchmarks.load import Load, LoadResult, grpc_load, http_load
from benchmarks.processes import ServerProcess

GET = "/google.longrunning.Operations/GetOperation"
SEED = 1
#: Ratio to the ceiling the real server should reach (gRPC at c16/c64; HTTP everywhere).
TARGETS = {"grpc": 0.90, "http": 0.75}


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "stored": 2_000, "hot": 200, "seconds": 0.5, "warmup": 0.3, "rounds": 1,
            "levels": (1, 16),
        }  # fmt: skip
    return {
        "stored": 100_000, "hot": 1_000, "seconds": 3.0, "warmup": 1.0, "rounds": 3,
        "levels": (1, 16, 64),
    }  # fmt: skip


def _load(transport: str, server: ServerProcess, names: list[str], load: Load) -> LoadResult:
    if transport == "grpc":
        requests = [operations_pb2.GetOperationRequest(name=n).SerializeToString() for n in names]
        return server.measured(lambda: grpc_load(server.grpc_target, GET, requests, load))
    paths = [f"/v1/{n}" for n in names]
    return server.measured(lambda: http_load(server.http_base, paths, load))


def run(quick: bool, processes: int = 2) -> dict[str, Any]:
    """Measure; returns the JSON-ready results."""
    s = _settings(quick)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lro-bench-") as tmp:
        db = Path(tmp) / "lro.db"
        names = dataset.names(SEED, s["stored"])
        started = time.perf_counter()
        dataset.bulk_load(db, (dataset.record(n, i, done=True) for i, n in enumerate(names)))
        load_seconds = time.perf_counter() - started
        hot = random.Random(2).sample(names, s["hot"])
        base = {"http_port": 0, "poll_interval_seconds": 60.0, "health_check_seconds": 60.0}
        with (
            ServerProcess(
                store=f"sqlite:///{tmp}/ceiling.db", benchmark_ceiling=True, **base
            ) as ceiling,
            ServerProcess(store=f"sqlite:///{db}", **base) as real,
        ):
            points = [(t, level, "hot", hot) for t in ("grpc", "http") for level in s["levels"]]
            if not quick:
                points += [(t, 16, "uniform", names) for t in ("grpc", "http")]
            for transport, level, reads, working_set in points:
                load = Load(level, s["seconds"], s["warmup"], min(processes, level))
                pairs = [
                    (_load(transport, ceiling, working_set, load),
                     _load(transport, real, working_set, load))
                    for _ in range(s["rounds"])
                ]  # fmt: skip
                rows.append(_row(transport, level, reads, pairs))
    return {
        "stored_operations": s["stored"],
        "working_set": s["hot"],
        "bulk_load_seconds": round(load_seconds, 2),
        "seconds_per_point": s["seconds"],
        "rounds": s["rounds"],
        "client_processes": processes,
        "rows": rows,
    }


def _row(
    transport: str, level: int, reads: str, pairs: list[tuple[LoadResult, LoadResult]]
) -> dict[str, Any]:
    ratio = statistics.median(
        ours.throughput / top.throughput if top.throughput else 0.0 for top, ours in pairs
    )
    cpu_ratio = statistics.median(
        top.server_cpu_us / ours.server_cpu_us if ours.server_cpu_us else 0.0 for top, ours in pairs
    )
    top, ours = _merged([p[0] for p in pairs]), _merged([p[1] for p in pairs])
    target = TARGETS[transport] if (transport == "http" or level >= 16) else None
    return {
        "transport": transport,
        "concurrency": level,
        "reads": reads,
        "ceiling": top.summary(),
        "real": ours.summary(),
        "ratio": round(ratio, 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "target": target,
        "met": None if target is None else ratio >= target,
    }


def _merged(results: list[LoadResult]) -> LoadResult:
    """Rounds of one side as one result (calls summed, CPU per call weighted by calls)."""
    calls = sum(r.calls for r in results)
    return LoadResult(
        calls=calls,
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        latencies=[x for r in results for x in r.latencies],
        tool=results[0].tool,
        server_cpu_us=sum(r.server_cpu_us * r.calls for r in results) / calls if calls else 0.0,
    )


def render(result: dict[str, Any]) -> str:
    """The table of a result."""
    headers = [
        "front", "c", "reads", "ceiling/s", "p50 µs", "p99 µs",
        "real/s", "p50 µs", "p99 µs", "server CPU µs c/r", "real/ceiling", "by CPU", "target",
    ]  # fmt: skip
    rows = [
        [
            r["transport"],
            r["concurrency"],
            r["reads"],
            r["ceiling"]["throughput"],
            r["ceiling"]["p50_us"],
            r["ceiling"]["p99_us"],
            r["real"]["throughput"],
            r["real"]["p50_us"],
            r["real"]["p99_us"],
            f"{r['ceiling']['server_cpu_us']:.0f}/{r['real']['server_cpu_us']:.0f}",
            f"{r['ratio']:.0%}",
            f"{r['cpu_ratio']:.0%}",
            "-" if r["target"] is None else f"≥{r['target']:.0%} " + ("ok" if r["met"] else "MISS"),
        ]
        for r in result["rows"]
    ]
    return table(headers, rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    args = parser.parse_args(argv)
    result = run(args.quick, args.processes)
    print(render(result))
    path = write_result("serving", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
