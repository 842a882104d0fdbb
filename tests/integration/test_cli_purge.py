"""`lro-server purge --older-than DURATION` on a SQLite store: done operations older than
the duration go; unfinished ones and a done child of an unfinished chain stay."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import uuid
from pathlib import Path

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from lro_server.core.record import OperationRecord
from lro_server.resume.chain import child_request_id
from lro_server.storage.sqlite import SqliteStore


def _record(request_id: str = "") -> OperationRecord:
    return OperationRecord(
        operation=operations_pb2.Operation(name=f"operations/{uuid.uuid4()}"),
        request_id=request_id,
    )


async def _fill(path: Path) -> dict[str, str]:
    store = SqliteStore(path)
    try:

        async def done(record: OperationRecord) -> OperationRecord:
            created, _ = await store.create(record)
            operation = operations_pb2.Operation(name=created.name, done=True)
            operation.response.Pack(empty_pb2.Empty())
            return await store.update(dataclasses.replace(created, operation=operation))

        running, _ = await store.create(_record())
        finished = await done(_record())
        parent, _ = await store.create(_record())
        child = await done(_record(child_request_id(parent.name, 0)))
        return {
            "running": running.name,
            "finished": finished.name,
            "parent": parent.name,
            "child": child.name,
        }
    finally:
        await store.close()


async def _names(path: Path) -> set[str]:
    store = SqliteStore(path)
    try:
        return {r.name for r in await store.expired(2**62, None, 100)} | {
            r.name for r in await store.claim("purge-test", 1.0, 100)
        }
    finally:
        await store.close()


def _purge(store: str, older_than: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lro_server.cli.server", "purge", "--older-than", older_than,
         "--store", store],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LRO_LOG_FORMAT": "text"},
    )  # fmt: skip


def test_purge_deletes_only_old_done_operations(tmp_path: Path) -> None:
    path = tmp_path / "lro.db"
    names = asyncio.run(_fill(path))
    store = f"sqlite:///{path}"

    kept = _purge(store, "30d")
    assert kept.returncode == 0, kept.stderr
    assert "purged 0 done operations" in kept.stdout
    assert asyncio.run(_names(path)) == set(names.values())

    purged = _purge(store, "0s")
    assert purged.returncode == 0, purged.stderr
    assert "purged 1 done operations" in purged.stdout
    assert asyncio.run(_names(path)) == {names["running"], names["parent"], names["child"]}


def test_purge_explains_a_bad_duration(tmp_path: Path) -> None:
    result = _purge(f"sqlite:///{tmp_path}/lro.db", "thirty days")
    assert result.returncode == 2
    assert "is not a duration" in result.stderr and "30d" in result.stderr
