"""Before/after of the server's optimisations, measured in one run on the same machine.

Each optimisation can be switched back off in the benchmark server (see
``server_process._undo_optimisations``), so both sides run the same code otherwise:

- JSON rendered once per version (``render_every_get`` is the before) and data_version
  asked of SQLite only after a commit (``ask_sqlite_every_get`` is the before): HTTP GETs
  at concurrency 16 over a working set of stored operations;
- woken waiters take the writer's record (``reread_on_wake`` is the before): waiters held
  on one replica, all completed at once; store reads and time to the last answer.

Rounds alternate before and after, so drifting load on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import dataset, fanin
from benchmarks.common import table, write_result
from benchmarks.load import Load, http_load
from benchmarks.processes import ServerProcess

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
                cpu = server.cpu_seconds()
                result = http_load(server.http_base, paths, Load(16, seconds, 0.3))
                sides[side]["throughput"].append(result.throughput)
                sides[side]["cpu"].append(
                    (server.cpu_seconds() - cpu) / max(1.0, result.served) * 1e6
                )
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


def run(quick: bool) -> dict[str, Any]:
    """Both comparisons; returns the JSON-ready results."""
    with tempfile.TemporaryDirectory(prefix="lro-bench-") as tmp:
        db, paths = _dataset(Path(tmp), quick)
        result = {key: _http(db, paths, switch, quick) for key, switch in HTTP_SWITCHES.items()}
        return {**result, "handover": _wake(Path(tmp), quick)}


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
    return f"{first}\n\n{second}"


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
