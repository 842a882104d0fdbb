"""Benchmark data: deterministic operation names and typical records, bulk-loaded fast.

Names come from a seeded generator, so the load clients and the server process agree on
them without shipping 100,000 names around.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from google.longrunning import operations_pb2
from google.protobuf import timestamp_pb2

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.core.record import OperationRecord
from lro_server.core.work_column import writable_work
from lro_server.storage import sqlite_schema as schema

#: Lease holder of loaded running operations: no benchmark server tracks them.
FOREIGN_HOLDER = "benchmark-elsewhere"
METHOD = "lro.databricks.v1.Jobs/RunNow"


def names(seed: int, count: int) -> list[str]:
    """``count`` operation names (uuid4), the same for the same seed."""
    rng = random.Random(seed)
    return [f"operations/{uuid.UUID(int=rng.getrandbits(128), version=4)}" for _ in range(count)]


def operation(name: str, index: int, *, done: bool) -> operations_pb2.Operation:
    """A typical Jobs.RunNow operation: RunMetadata with two tasks, a Run response if done."""
    now = timestamp_pb2.Timestamp(seconds=1_790_000_000 + index, nanos=123_000_000)
    metadata = jobs_pb2.RunMetadata(
        run_id=100_000 + index,
        job_id=42,
        run_page_url=f"https://example.cloud.databricks.com/#job/42/run/{100_000 + index}",
        life_cycle_state="TERMINATED" if done else "RUNNING",
        result_state="SUCCESS" if done else "",
        state_message="",
        status="TERMINATED" if done else "RUNNING",
        tasks=[
            jobs_pb2.TaskState(task_key="extract", life_cycle_state="TERMINATED"),
            jobs_pb2.TaskState(
                task_key="train", life_cycle_state="TERMINATED" if done else "RUNNING"
            ),
        ],
        progress_percent=100 if done else 50,
        create_time=now,
        update_time=now,
    )
    op = operations_pb2.Operation(name=name, done=done)
    op.metadata.Pack(metadata)
    if done:
        op.response.Pack(jobs_pb2.Run(run_id=100_000 + index, job_id=42))
    return op


def record(name: str, index: int, *, done: bool) -> OperationRecord:
    """A stored record around :func:`operation`; running ones are leased elsewhere."""
    return OperationRecord(
        operation=operation(name, index, done=done),
        owner="",
        method=METHOD,
        state="TERMINATED" if done else "RUNNING",
        family="jobs",
        payload=json.dumps(
            {"action": "run_now", "request": {"job_id": 42}, "entity": {"run_id": 100_000 + index}}
        ),
        lease_holder="" if done else FOREIGN_HOLDER,
        lease_expire_us=0 if done else (int(time.time()) + 86_400) * 1_000_000,
    )


def bulk_load(path: Path, records: Iterator[OperationRecord], batch: int = 10_000) -> int:
    """Insert ``records`` into the SQLite store at ``path`` in large transactions.

    The file gets the store's own schema (the one source of the DDL); rows
    use the store's own INSERT statement and parameters, so they are what ``create``
    would have written.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    schema.migrate(conn)
    now = int(time.time() * 1_000_000)
    count = 0
    pending: list[dict[str, object]] = []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(schema.INSERT, pending)
        conn.execute("COMMIT")
        pending.clear()

    for rec in records:
        pending.append(schema.insert_params(rec, writable_work(rec), now + count))
        count += 1
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    conn.close()
    return count
