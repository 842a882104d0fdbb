"""Before/after of the server's optimisations, measured in one run on the same machine.

Each optimisation can be switched back off in the benchmark server (see
``server_process._undo_optimisations``), so both sides run the same code otherwise:

- JSON rendered once per version (``render_every_get`` is the before) and data_version
  asked of SQLite only after a commit (``ask_sqlite_every_get`` is the before): HTTP GETs
  at concurrency 16 over a working set of stored operations;
- woken waiters take the writer's record (``reread_on_wake`` is the before): waiters held
  on one replica, all completed at once; store reads and time to the last answer;
- listing unfinished operations through their own index (the before drops it): a
  ``done = false`` page, as the stalled-chain sweep reads every few seconds, among many
  done operations, timed on the store itself.

Rounds alternate before and after, so drifting load on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import dataset, fanin
from benchmarks.common import table, write_result
from benchmarks.load import Load, http_load
from benchmarks.processes import ServerProcess
from lro_server.core.filter import parse
from lro_server.core.store import ListQuery
from lro_server.storage import SqliteStore
from lro_server.storage import sqlite_schema as schema

#: HTTP GET comparisons: result key → the switch that restores the before.
HTTP_SWITCHES = {
    "json_once_per_version": "render_every_get",
    "data_version_after_commits": "ask_sqlite_every_get",
}


def _dataset(tmp: Path, quick: bool) -> tuple[Path, list[str]]:
    stored, hot = (2_000, 200) if quick else (100_000, 1_000)
    db = tmp / "ab.db"
    names = dataset.names(1, stored)
    dataset.bulk_load(db, (dataset.record(n, i, done=True) for i, n in enumerate(names)))
    return db, [f"/v1/{n}" for n in random.Random(2).sample(names, hot)]


def _http(db: Path, paths: list[str], switch: str, quick: bool) -> dict[str, Any]:
    seconds, rounds = (0.5, 1) if quick else (3.0, 3)
    base = {"store": f"sqlite:///{db}", "poll_interval_seconds": 60.0}
    sides: dict[str, dict[str, list[float]]] = {
        "before": {"throughput": [], "cpu": []},
        "after": {"throughput": [], "cpu": []},
    }
    with (
        ServerProcess(**base, **{switch: True}) as before,
        ServerProcess(**base) as after,
    ):
        for _ in range(rounds):
            for side, server in (("before", before), ("after", after)):
                result = server.measured(
                    lambda s=server: http_load(s.http_base, paths, Load(16, seconds, 0.3))
                )
                sides[side]["throughput"].append(result.throughput)
                sides[side]["cpu"].append(result.server_cpu_us)
    return {
        side: {
            "throughput": round(statistics.median(v["throughput"]), 1),
            "server_cpu_us": round(statistics.median(v["cpu"]), 1),
        }
        for side, v in sides.items()
    }


def _wake(tmp: Path, quick: bool) -> dict[str, Any]:
    waiters = 300 if quick else 2_000
    results = {}
    for side, switches in (("before", {"reread_on_wake": True}), ("after", {})):
        db = tmp / f"wake-{side}.db"
        names = dataset.names(fanin.SEED, waiters)
        dataset.bulk_load(db, (dataset.record(n, i, done=False) for i, n in enumerate(names)))
        with ServerProcess(
            store=f"sqlite:///{db}", http_port=-1, poll_interval_seconds=60.0, **switches
        ) as server:
            workers, queue = fanin._start_waiters(
                server.grpc_target, fanin._wait_requests(names, 240), 2
            )
            fanin._until(server, waiters, timeout=120)
            pre = server.command("stats")
            completion = server.command("complete", seed=fanin.SEED, count=waiters)
            outcome = fanin._collect(workers, queue, timeout=120)
            post = server.command("stats")
        last = outcome["answered"][-1] if outcome["answered"] else completion["finished"]
        results[side] = {
            "waiters": waiters,
            "store_reads_to_wake": int(post["store_gets"] - pre["store_gets"]) - waiters,
            "last_answer_after_writes_s": round(last - completion["finished"], 3),
        }
    return results


def _unfinished(tmp: Path, quick: bool) -> dict[str, Any]:
    done, running, reads = (5_000, 20, 20) if quick else (100_000, 100, 50)
    db = tmp / "unfinished.db"
    names = dataset.names(3, done + running)
    dataset.bulk_load(db, (dataset.record(n, i, done=i >= running) for i, n in enumerate(names)))
    query = ListQuery(filter=parse("done = false"), owner=None, after=None, limit=100)

    async def page_ms() -> float:
        store = SqliteStore(db)
        try:
            assert len(await store.list(query)) == running
            started = time.perf_counter()
            for _ in range(reads):
                await store.list(query)
            return (time.perf_counter() - started) / reads * 1e3
        finally:
            await store.close()

    after = asyncio.run(page_ms())
    # The file stays at the current schema version, so the store does not put them back.
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for index in ("unfinished_by_create", "unfinished_by_owner_create"):
            conn.execute(f"DROP INDEX {schema.TABLE}_{index}")
    before = asyncio.run(page_ms())
    return {"done": done, "running": running, "before_ms": round(before, 3),
            "after_ms": round(after, 3)}  # fmt: skip


def run(quick: bool) -> dict[str, Any]:
    """Both comparisons; returns the JSON-ready results."""
    with tempfile.TemporaryDirectory(prefix="lro-bench-") as tmp:
        db, paths = _dataset(Path(tmp), quick)
        result = {key: _http(db, paths, switch, quick) for key, switch in HTTP_SWITCHES.items()}
        result["handover"] = _wake(Path(tmp), quick)
        result["unfinished_listing"] = _unfinished(Path(tmp), quick)
        return result


def render(result: dict[str, Any]) -> str:
    """The tables of a result."""
    w = result["handover"]
    first = table(
        ["HTTP GET c16", "", "req/s", "server CPU µs/req"],
        [
            [key, side, result[key][side]["throughput"], result[key][side]["server_cpu_us"]]
            for key in HTTP_SWITCHES
            for side in ("before", "after")
        ],
    )
    second = table(
        ["wake", "waiters", "store reads to wake", "last answer after writes s"],
        [
            [
                side,
                w[side]["waiters"],
                w[side]["store_reads_to_wake"],
                w[side]["last_answer_after_writes_s"],
            ]
            for side in ("before", "after")
        ],
    )
    u = result["unfinished_listing"]
    third = table(
        ["done = false page", "done ops", "running ops", "before ms", "after ms"],
        [["SQLite store", u["done"], u["running"], u["before_ms"], u["after_ms"]]],
    )
    return f"{first}\n\n{second}\n\n{third}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(render(result))
    print(f"wrote {write_result('optimisations', result)}")
    return result


if __name__ == "__main__":
    main()
