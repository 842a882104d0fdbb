"""Serving: GetOperation on the real server (SQLite, 100,000 stored operations) against the
ceiling (the same server answering a constant Operation) and, over gRPC, against a plain
grpc.aio server (the reference), over gRPC and the HTTP front.

The plain server answers the ceiling's Operation, pre-serialized, from a bare
``grpc.aio.server()`` with one handler: none of our registry, wrappers, metrics, auth, log
context or other services (see ``benchmarks.server_process.serve_plain``). So
real/plain is the whole cost of the server over grpc.aio itself (target: at least 90% at
concurrency 16 and 64), ceiling/plain the cost of our per-call wrappers alone, and
real/ceiling the cost of the service and the store.

Every server runs in a child process under uvloop, as ``lro-server serve`` does; load comes
from separate client processes (see :mod:`benchmarks.load`). Clients read a working set of
1,000 operations at random (the operations clients are polling); the full run also reads
uniformly over all stored operations (a cold page cache) at concurrency 16.

Each point alternates the servers for a few rounds and reports the median of the
per-round ratios: load from other work on a shared machine drifts over seconds and hits
every side of a round alike.
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
#: Ratio the real server should reach: over gRPC to the plain grpc.aio server (at c16 and
#: c64), over HTTP to the ceiling (everywhere).
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
            ServerProcess(plain_grpc=True) as plain,
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
                sides = [plain, ceiling, real] if transport == "grpc" else [ceiling, real]
                rounds = [
                    [_load(transport, side, working_set, load) for side in sides]
                    for _ in range(s["rounds"])
                ]
                rows.append(_row(transport, level, reads, rounds))
    return {
        "stored_operations": s["stored"],
        "working_set": s["hot"],
        "bulk_load_seconds": round(load_seconds, 2),
        "seconds_per_point": s["seconds"],
        "rounds": s["rounds"],
        "client_processes": processes,
        "rows": rows,
    }


def _row(transport: str, level: int, reads: str, rounds: list[list[LoadResult]]) -> dict[str, Any]:
    """One point: ``rounds`` of [plain (gRPC only), ceiling, real] results."""
    ours = _merged([r[-1] for r in rounds])
    top = _merged([r[-2] for r in rounds])
    row: dict[str, Any] = {
        "transport": transport,
        "concurrency": level,
        "reads": reads,
        "ceiling": top.summary(),
        "real": ours.summary(),
        "ratio": _median_ratio(rounds, -1, -2),
        "cpu_ratio": _median_ratio(rounds, -2, -1, cpu=True),
    }
    base = "ceiling"
    if transport == "grpc":
        row["plain"] = _merged([r[0] for r in rounds]).summary()
        row["ratio_to_plain"] = _median_ratio(rounds, -1, 0)
        row["ceiling_to_plain"] = _median_ratio(rounds, -2, 0)
        row["cpu_ratio_to_plain"] = _median_ratio(rounds, 0, -1, cpu=True)
        base = "plain"
    target = TARGETS[transport] if (transport == "http" or level >= 16) else None
    measured = row["ratio_to_plain"] if base == "plain" else row["ratio"]
    row.update(target=target, target_base=base, met=None if target is None else measured >= target)
    return row


def _median_ratio(
    rounds: list[list[LoadResult]], top: int, bottom: int, cpu: bool = False
) -> float:
    """Median over rounds of throughput[top] / throughput[bottom]; with ``cpu``, of server
    CPU per call[top] / [bottom] (callers pass the reference as ``top``: the share of the
    reference's throughput the other would reach were the server CPU the only limit)."""
    ratios = []
    for r in rounds:
        a, b = r[top], r[bottom]
        if cpu:
            ratios.append(a.server_cpu_us / b.server_cpu_us if b.server_cpu_us else 0.0)
        else:
            ratios.append(a.throughput / b.throughput if b.throughput else 0.0)
    return round(statistics.median(ratios), 3)


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
        "front", "c", "reads", "plain/s", "ceiling/s", "real/s", "p50 µs", "p99 µs",
        "server CPU µs p/c/r", "ceiling/plain", "real/plain", "real/ceiling", "by CPU",
        "target",
    ]  # fmt: skip
    rows = []
    for r in result["rows"]:
        plain = r.get("plain")
        cpu = [r["ceiling"]["server_cpu_us"], r["real"]["server_cpu_us"]]
        if plain:
            cpu.insert(0, plain["server_cpu_us"])
        rows.append(
            [
                r["transport"],
                r["concurrency"],
                r["reads"],
                plain["throughput"] if plain else "-",
                r["ceiling"]["throughput"],
                r["real"]["throughput"],
                r["real"]["p50_us"],
                r["real"]["p99_us"],
                "/".join(f"{c:.0f}" for c in cpu),
                f"{r['ceiling_to_plain']:.0%}" if plain else "-",
                f"{r['ratio_to_plain']:.0%}" if plain else "-",
                f"{r['ratio']:.0%}",
                f"{r['cpu_ratio_to_plain' if plain else 'cpu_ratio']:.0%}",
                "-"
                if r["target"] is None
                else f"≥{r['target']:.0%} of {r['target_base']} " + ("ok" if r["met"] else "MISS"),
            ]
        )
    notes = (
        "plain = bare grpc.aio server, ceiling = our server answering a constant, real = our "
        "server on SQLite; by CPU = the reference's server CPU per call / real's (plain for "
        "gRPC, ceiling for HTTP)"
    )
    return table(headers, rows) + "\n" + notes


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
