"""Instructions per GetOperation on the server's event-loop thread, counted by callgrind.

Wall-clock ratios on a shared 2-core machine move by more than the differences they are
meant to show (docs/performance.md); instruction counts do not. Each side is a benchmark
server process (:mod:`benchmarks.server_process`, uvloop, as ``lro-server serve`` runs)
started under ``valgrind --tool=callgrind`` with instrumentation off. This process makes
``--warmup`` GetOperation calls one at a time (concurrency 1, a warm read cache), switches
instrumentation on (``callgrind_control -i on``), makes ``--calls`` more, switches it off
and stops the server. The figures, per call, of the main thread (the event loop's: it does
all of a call's Python work; grpc's poller threads are left out, they vary by ±15% between
runs):

- ``instructions``: everything the thread executed, the cyclic GC excluded: one full
  collection of a large heap may or may not land in a window, which would swing the figure
  by tens of thousands per call (``gc`` gives what it took, for the record);
- ``python``: of which inside the interpreter's frames (``_PyEval_EvalFrameDefault``
  inclusive: Python code and what it calls, GC excluded).

Sides: ``plain`` (a bare grpc.aio server returning pre-serialized bytes,
``serve_plain``), ``ceiling`` (our server with a constant GetOperation handler), ``real``
(our server on SQLite: 2,000 done operations, a working set of 200 read in turn), and with
``--revision REV`` the real server of an earlier revision (``real@REV``, its ``lro_server``
driven by this revision's benchmark harness) in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2

from benchmarks import dataset
from benchmarks.common import git_revision, revision_tree, table, write_result
from benchmarks.processes import ServerProcess

GET = "/google.longrunning.Operations/GetOperation"
SEED = 1
STORED = 2_000
WORKING_SET = 200
#: Functions whose inclusive cost is the cyclic garbage collector's (callbacks included).
GC_FUNCTIONS = ("gc_collect_with_callback", "gc_collect_main")
#: The interpreter's frame evaluation: inclusive, the cost of running Python code.
EVAL = "_PyEval_EvalFrameDefault"


def _valgrind(out: Path) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        "--dump-instr=no",
        f"--callgrind-out-file={out}",
    ]


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _inclusive(path: Path) -> tuple[int, dict[str, int]]:
    """The total of one thread's profile and the inclusive cost of each function."""
    answer = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    total = 0
    costs: dict[str, int] = {}
    for line in answer.stdout.splitlines():
        match = re.match(r"^\s*([\d,]+) \([^)]*\)\s+(\S+)", line)
        if match is None:
            continue
        cost = int(match.group(1).replace(",", ""))
        name = match.group(2)
        if name == "PROGRAM":
            total = cost
            continue
        function = name.rsplit(":", 1)[-1]
        costs[function] = max(costs.get(function, 0), cost)
    return total, costs


def _calls(
    server: ServerProcess, requests: list[bytes], count: int, offset: int, concurrency: int
) -> None:
    """``count`` calls, ``concurrency`` in flight at a time (one client, one channel)."""

    async def run() -> None:
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            call = channel.unary_unary(GET)
            share = count // concurrency

            async def caller(first: int) -> None:
                for i in range(first, first + share):
                    await call(requests[i % len(requests)], timeout=120)

            await asyncio.gather(*(caller(offset + n * share) for n in range(concurrency)))

    asyncio.run(run())


def _count(
    label: str, config: dict[str, Any], root: Path | None, s: dict[str, Any], work: Path
) -> dict[str, Any]:
    out = work / f"{re.sub(r'[^a-z0-9]', '_', label)}.cg"
    extra: dict[str, Any] = {} if root is None else {"root": root}
    hot = s["hot"]
    requests = [operations_pb2.GetOperationRequest(name=n).SerializeToString() for n in hot]
    level = s["concurrency"]
    with ServerProcess(prefix=_valgrind(out), **extra, **config) as server:
        _calls(server, requests, s["warmup"], 0, level)
        _control(server.pid, "-i", "on")
        _calls(server, requests, s["calls"], s["warmup"], level)
        _control(server.pid, "-i", "off")
        pid = server.pid
    main = next(work.glob(f"{out.name}*-01"), None) or Path(f"{out}-01")
    total, costs = _inclusive(main)
    gc = max(costs.get(f, 0) for f in GC_FUNCTIONS)
    calls = s["calls"] // level * level
    row = {
        "side": label,
        "instructions": round((total - gc) / calls),
        "python": round((costs.get(EVAL, 0) - gc) / calls),
        "gc": round(gc / calls),
        "calls": calls,
        "pid": pid,
    }
    print(row, flush=True)
    return row


def run(
    warmup: int,
    calls: int,
    revision: str | None,
    sides: list[str],
    keep: Path | None = None,
    concurrency: int = 1,
) -> dict[str, Any]:
    """Count every side (``keep``: copy the profiles there); returns the JSON-ready result."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind (with callgrind_control) is not installed")
    # The same string hashes in every run (the servers inherit it): dict and set layouts,
    # and so the counts, repeat.
    os.environ["PYTHONHASHSEED"] = "0"
    rows = []
    with tempfile.TemporaryDirectory(prefix="lro-cg-") as tmp:
        work = Path(tmp)
        db = work / "lro.db"
        names = dataset.names(SEED, STORED)
        dataset.bulk_load(db, (dataset.record(n, i, done=True) for i, n in enumerate(names)))
        # Background loops (claims every third of a lease, the stalled-chain sweep, health
        # checks, re-reads) run by the clock, and under valgrind a window of calls lasts
        # seconds: they would add to the calls' count what they do per second, not per call.
        hour = 3600.0
        base = {
            "http_port": -1,
            "poll_interval_seconds": hour,
            "health_check_seconds": hour,
            "lease_seconds": hour,
            "resume": {"recheck_seconds": hour, "stall_seconds": hour},
        }
        s: dict[str, Any] = {
            "warmup": warmup,
            "calls": calls,
            "hot": names[:WORKING_SET],
            "concurrency": concurrency,
        }
        configs: dict[str, tuple[dict[str, Any], Path | None]] = {
            "plain": ({"plain_grpc": True}, None),
            "ceiling": (
                {"store": f"sqlite:///{work}/ceiling.db", "benchmark_ceiling": True, **base},
                None,
            ),
            "real": ({"store": f"sqlite:///{db}", **base}, None),
        }
        if revision:
            tree = revision_tree(revision, work)
            if tree is None:
                raise SystemExit(f"revision {revision} is not at hand")
            # That revision's server, driven by this harness (its configuration switches).
            for harness in Path(__file__).resolve().parent.glob("*.py"):
                shutil.copy(harness, tree / "benchmarks" / harness.name)
            configs[f"real@{revision}"] = ({"store": f"sqlite:///{db}", **base}, tree)
            sides = [*sides, f"real@{revision}"]
        for side in sides:
            config, root = configs[side]
            rows.append(_count(side, config, root, s, work))
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for profile in work.glob("*.cg*"):
                shutil.copy(profile, keep / profile.name)
    return {
        "revision": git_revision(),
        "warmup": warmup,
        "calls_counted": calls,
        "concurrency": concurrency,
        "rows": rows,
    }


def render(result: dict[str, Any]) -> str:
    """The table of a result."""
    plain = next((r for r in result["rows"] if r["side"] == "plain"), None)
    rows = []
    for r in result["rows"]:
        ratio = f"{plain['instructions'] / r['instructions']:.1%}" if plain else "-"
        with_gc = r["instructions"] + r["gc"]
        ratio_gc = f"{(plain['instructions'] + plain['gc']) / with_gc:.1%}" if plain else "-"
        rows.append([r["side"], r["instructions"], r["python"], r["gc"], with_gc, ratio, ratio_gc])
    headers = [
        "side", "instructions per call", "in Python frames", "GC (excluded)", "with GC",
        "plain/side", "plain/side with GC",
    ]  # fmt: skip
    return table(headers, rows) + (
        f"\n{result['calls_counted']:,} calls counted after {result['warmup']:,}, "
        f"{result['concurrency']} in flight; plain/side: the share of plain's throughput a "
        "side would reach were the event-loop thread's instructions the only cost"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Count, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=4_000)
    parser.add_argument("--calls", type=int, default=1_500)
    parser.add_argument("--revision", help="also count the real server of this revision")
    parser.add_argument("--sides", default="plain,ceiling,real")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="calls in flight at a time (one client)"
    )
    parser.add_argument(
        "--keep", type=Path, help="copy the callgrind profiles here (callgrind_annotate them)"
    )
    args = parser.parse_args(argv)
    result = run(
        args.warmup, args.calls, args.revision, args.sides.split(","), args.keep, args.concurrency
    )
    print(render(result))
    print(f"wrote {write_result('percall_instructions', result)}")
    return result


if __name__ == "__main__":
    main()
