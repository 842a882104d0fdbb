"""A filtered listing among many operations stays a page read: labels and Databricks ids.

Fills a store with N operations (1 in 1,000 labeled ``team=rare`` and of job 7, half
``team=common``, every one with a distinct run id), then times one ListOperations page
(50) for filters on the indexed fields, and for ``metadata.state`` (not indexed, shown for
contrast), at N/10 and at N operations. An indexed filter costs the same at both sizes;
the unindexed one grows with N. SQLite by default; ``--backend spanner`` runs the Cloud
Spanner emulator too (its figures measure the emulator, not Cloud Spanner).

Usage::

    python benchmarks/filtered_listing.py                    # 100,000 operations, SQLite
    python benchmarks/filtered_listing.py --backend spanner  # and on the emulator
    python benchmarks/filtered_listing.py --quick            # 5,000

Prints a table and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from google.longrunning import operations_pb2

from lro_server.core.errors import LroError
from lro_server.core.filter import parse
from lro_server.core.labels import SearchKeys
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery, OperationStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import git_revision, table, write_result

FILTERS = {
    "labels.team = rare": 'labels.team = "rare"',
    "labels.team = common": 'labels.team = "common"',
    "rare label, unfinished": 'labels.team = "rare" AND done = false',
    "metadata.job_id = 7": "metadata.job_id = 7",
    "metadata.run_id = one": "metadata.run_id = 12345",
    "metadata.state (no index)": 'metadata.state = "RARE"',
}
PAGE = 50
REPEAT = 15


def _record(index: int, base_us: int) -> OperationRecord:
    rare = index % 1000 == 0
    labels = {"team": "rare" if rare else "common" if index % 2 else "other", "env": "prod"}
    return OperationRecord(
        operation=operations_pb2.Operation(name=f"operations/{uuid.uuid4()}"),
        version=1,
        create_time_us=base_us + index,
        update_time_us=base_us + index,
        state="RARE" if rare else "RUNNING",
        labels=labels,
        keys=SearchKeys(job_id=7 if rare else 1000 + index % 50, run_id=10000 + index),
    )


async def _fill_sqlite(store: OperationStore, start: int, stop: int) -> None:
    for index in range(start, stop):
        await store.create(_record(index, 1_700_000_000_000_000))


def _fill_spanner(store: Any, start: int, stop: int) -> None:
    from lro_server.core.work_column import writable_work
    from lro_server.storage.spanner_schema import LABELS_TABLE, TABLE
    from lro_server.storage.spanner_sql import (
        INSERT_COLUMNS,
        LABEL_COLUMNS,
        insert_values,
        label_rows,
    )

    step = 500  # rows per commit: under the mutation limit with their labels
    for first in range(start, stop, step):
        records = [_record(i, 1_700_000_000_000_000) for i in range(first, min(stop, first + step))]
        with store._db.batch() as batch:
            batch.insert(
                TABLE, INSERT_COLUMNS, [insert_values(r, writable_work(r)) for r in records]
            )
            batch.insert(
                LABELS_TABLE, LABEL_COLUMNS, [row for r in records for row in label_rows(r)]
            )


async def _page_ms(store: OperationStore, text: str) -> float:
    query = ListQuery(parse(text), None, None, PAGE + 1)
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        try:
            await store.list(query)
        except LroError as exc:  # the emulator gives up on long scans
            print(f"  {text}: {exc.code.name}", flush=True)
            return math.nan
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def _run(backend: str, total: int, workdir: Path) -> dict[str, dict[str, float]]:
    sizes = (total // 10, total)
    results: dict[str, dict[str, float]] = {name: {} for name in FILTERS}
    if backend == "sqlite":
        from lro_server.storage.sqlite import SqliteStore

        store: Any = SqliteStore(workdir / "lro.db")
        emulator = None
    else:
        from lro_server.storage.spanner_open import open_spanner_store
        from lro_server.testing.spanner_emulator import SpannerEmulator

        emulator = SpannerEmulator()
        emulator.start()
        context = emulator.activated()
        context.__enter__()
        store = await open_spanner_store(emulator.create_database())
    try:
        filled = 0
        for size in sizes:
            if backend == "sqlite":
                await _fill_sqlite(store, filled, size)
            else:
                await asyncio.to_thread(_fill_spanner, store, filled, size)
            filled = size
            for name, text in FILTERS.items():
                results[name][str(size)] = await _page_ms(store, text)
    finally:
        await store.close()
        if emulator is not None:
            emulator.stop()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Fill, list, print, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--operations", type=int)
    parser.add_argument("--backend", choices=["sqlite", "spanner"], action="append")
    args = parser.parse_args(argv)
    total = args.operations or (5000 if args.quick else 100_000)
    figures: dict[str, Any] = {"operations": total, "page": PAGE}
    for backend in args.backend or ["sqlite"]:
        with tempfile.TemporaryDirectory() as tmp:
            results = asyncio.run(_run(backend, total, Path(tmp)))
        figures[backend] = results
        small, large = str(total // 10), str(total)
        rows = [
            [name, f"{r[small]:.2f}", f"{r[large]:.2f}", f"{r[large] / max(r[small], 1e-9):.1f}"]
            for name, r in results.items()
        ]
        print(f"{backend}: one page of {PAGE}, median of {REPEAT} (ms)")
        print(table(["filter", f"{small} ops", f"{large} ops", "ratio"], rows))
    path = write_result("filtered_listing", {"revision": git_revision(), "figures": figures})
    print(f"written to {path}")
    return figures


if __name__ == "__main__":
    main()
