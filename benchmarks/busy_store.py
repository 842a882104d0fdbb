"""A busy SQLite database: how the server answers while another process holds the write lock.

As an operator would meet it (a backup, a second replica's long transaction): a server on
a SQLite file, and a second process that takes the file's write lock (``BEGIN IMMEDIATE``)
and keeps it for ``--hold`` seconds. Meanwhile this script sends, from several threads:

- writes that need the lock (DeleteOperation), one after another, each retried by its
  client the way google-api-core retries UNAVAILABLE;
- GetOperation of an operation the server read before (cached) and of ones it never read;
- ``/readyz`` and ``/healthz``.

It prints the latency of each kind of call during the hold (p50 and max) and what became
of the writes (succeeded, UNAVAILABLE, anything else). Reads must stay fast; a write may
wait for the lock up to the store's busy timeout and then fail UNAVAILABLE, never INTERNAL.

Usage::

    python benchmarks/busy_store.py             # hold the lock 5 s
    python benchmarks/busy_store.py --hold 2    # (--quick: the same as --hold 2)

Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import dataset
from benchmarks.common import git_revision, percentile, python, table, write_result
from benchmarks.processes import ServerProcess

#: Python run by the process that holds the lock: take it, say so, hold it, let it go.
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""
#: Seconds between two rounds of reads during the hold.
ROUND = 0.1


class Calls:
    """Latencies and outcomes of calls, by kind (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = {}
        self.outcomes: dict[str, dict[str, int]] = {}

    def timed(self, kind: str, call: Callable[[], str]) -> None:
        """Run ``call`` (which returns its outcome) and record how long it took."""
        started = time.perf_counter()
        outcome = call()
        elapsed = time.perf_counter() - started
        with self.lock:
            self.seconds.setdefault(kind, []).append(elapsed)
            counts = self.outcomes.setdefault(kind, {})
            counts[outcome] = counts.get(outcome, 0) + 1

    def rows(self) -> list[list[Any]]:
        """One table row per kind: calls, p50 and max in milliseconds, outcomes."""
        rows = []
        for kind, samples in self.seconds.items():
            ordered = sorted(samples)
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes[kind].items()))
            rows.append(
                [kind, len(ordered), percentile(ordered, 0.5) * 1e3, ordered[-1] * 1e3, outcomes]
            )
        return rows


def _grpc_outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


def _http_outcome(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return str(answer.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)


def run(hold: float) -> dict[str, Any]:
    """Measure one hold; returns the figures."""
    with tempfile.TemporaryDirectory(prefix="lro-busy-") as tmp:
        path = Path(tmp) / "lro.db"
        names = dataset.names(7, 400)
        dataset.bulk_load(path, (dataset.record(n, i, done=True) for i, n in enumerate(names)))
        cached, uncached, doomed = names[0], iter(names[1:200]), iter(names[200:])
        calls = Calls()
        with ServerProcess(store=f"sqlite:///{path}") as server:
            channel = grpc.insecure_channel(server.grpc_target)
            stub = operations_pb2_grpc.OperationsStub(channel)
            stub.GetOperation(operations_pb2.GetOperationRequest(name=cached), timeout=30)
            holder = subprocess.Popen(
                [python(), "-c", HOLDER, str(path), str(hold)], stdout=subprocess.PIPE, text=True
            )
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            locked_at = time.monotonic()
            holding = threading.Event()
            holding.set()

            def write() -> str:
                # A client that retries UNAVAILABLE, as google-api-core's default retry does.
                name = next(doomed)
                request = operations_pb2.DeleteOperationRequest(name=name)
                while True:
                    outcome = _grpc_outcome(lambda: stub.DeleteOperation(request, timeout=60))
                    if outcome != "UNAVAILABLE" or not holding.is_set():
                        return outcome
                    time.sleep(0.1)

            def writer() -> None:
                while holding.is_set():
                    calls.timed("DeleteOperation (write)", write)

            def get(name: str) -> str:
                request = operations_pb2.GetOperationRequest(name=name)
                return _grpc_outcome(lambda: stub.GetOperation(request, timeout=60))

            def reader(kind: str, call: Callable[[], str]) -> None:
                while holding.is_set():
                    calls.timed(kind, call)
                    time.sleep(ROUND)

            readers = {
                "GetOperation (read before)": lambda: get(cached),
                "GetOperation (never read)": lambda: get(next(uncached)),
                "/readyz": lambda: _http_outcome(server.http_base + "/readyz"),
                "/healthz": lambda: _http_outcome(server.http_base + "/healthz"),
            }
            threads = [threading.Thread(target=writer)] + [
                threading.Thread(target=reader, args=item) for item in readers.items()
            ]
            for thread in threads:
                thread.start()
            assert holder.stdout.readline().strip() == "released"
            held = time.monotonic() - locked_at
            holding.clear()
            for thread in threads:
                thread.join(120)
            holder.wait(10)
            channel.close()
    rows = calls.rows()
    print(f"\nanother process held the SQLite write lock for {held:.1f} s; calls meanwhile:")
    print(table(["call", "calls", "p50 ms", "max ms", "outcomes"], rows))
    return {
        "hold_seconds": round(held, 2),
        "calls": {row[0]: {"calls": row[1], "p50_ms": round(row[2], 2),
                           "max_ms": round(row[3], 2), "outcomes": row[4]} for row in rows},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Entry point; returns the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=5.0, help="seconds the lock is held")
    parser.add_argument("--quick", action="store_true", help="hold the lock 2 s")
    args = parser.parse_args(argv)
    result = {"revision": git_revision(), **run(2.0 if args.quick else args.hold)}
    print(f"results: {write_result('busy_store', result)}")
    return result


if __name__ == "__main__":
    main()
