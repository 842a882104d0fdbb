"""Another process holds the SQLite write lock: the server keeps answering, writes wait.

A real second process takes the file's write lock (``BEGIN IMMEDIATE``) and keeps it until
the test tells it to let go. Meanwhile a DeleteOperation must wait for the lock, while
GetOperation (of an operation read before and of one never read), ``/readyz`` and
``/healthz`` answer; the write then succeeds once the lock is gone, or fails UNAVAILABLE
when its busy timeout runs out first, never INTERNAL. Each read has a deadline shorter
than the write's busy timeout, so a read stuck behind the lock would fail.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import requests
from google.longrunning import operations_pb2, operations_pb2_grpc
from lro_steps import error_info, grpc_status

from lro_server.core.record import OperationRecord
from lro_server.storage import SqliteStore
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

#: The process holding the lock: take it, say so, hold it until told on stdin, let go.
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""
#: Deadline of each read while the lock is held (far below the write's busy timeout).
READ_DEADLINE = 15.0


class LockHolder:
    """A second process holding the SQLite file's write lock until :meth:`release`."""

    def __init__(self, path: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        assert self.process.stdout.readline().strip() == "locked"

    @property
    def holding(self) -> bool:
        return self.process.poll() is None

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
            assert self.process.stdout.readline().strip() == "released"
        self.process.wait(10)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()


def _sqlite(server: ServerThread) -> SqliteStore:
    store: Any = server.application.store  # ObservedStore → MeasuredStore → SqliteStore
    while not isinstance(store, SqliteStore):
        store = store.inner
    return store


def _create(server: ServerThread, n: int) -> str:
    name = f"operations/00000000-0000-4000-8000-{n:012d}"
    operation = operations_pb2.Operation(name=name, done=True)
    server.run(server.application.store.create(OperationRecord(operation=operation)))
    return name


@pytest.fixture
def channels() -> Iterator[list[grpc.Channel]]:
    opened: list[grpc.Channel] = []
    yield opened
    for channel in opened:
        channel.close()


@pytest.fixture
def lock_holders() -> Iterator[Callable[[str], LockHolder]]:
    started: list[LockHolder] = []

    def start(path: str) -> LockHolder:
        holder = LockHolder(path)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        holder.release()


def _busy_scene(
    make_server: Callable[..., ServerThread],
    lock_holders: Callable[[str], LockHolder],
    channels: list[grpc.Channel],
    busy_timeout: float,
) -> tuple[operations_pb2_grpc.OperationsStub, grpc.Future, LockHolder, str]:
    """A server whose DeleteOperation waits for a lock another process holds."""
    server = make_server(sqlite_busy_timeout_seconds=busy_timeout)
    read_before, never_read, doomed = (_create(server, n) for n in (1, 2, 3))
    channel = grpc.insecure_channel(server.grpc_target)
    channels.append(channel)
    stub = operations_pb2_grpc.OperationsStub(channel)
    stub.GetOperation(operations_pb2.GetOperationRequest(name=read_before), timeout=10)
    store = _sqlite(server)
    holder = lock_holders(store.path)
    attempts = store.busy.busy_attempts
    write = stub.DeleteOperation.future(
        operations_pb2.DeleteOperationRequest(name=doomed), timeout=busy_timeout + 30
    )
    wait_until(lambda: store.busy.busy_attempts > attempts, what="the write to meet the lock")
    for name in (read_before, never_read):
        answer = stub.GetOperation(
            operations_pb2.GetOperationRequest(name=name), timeout=READ_DEADLINE
        )
        assert answer.name == name and answer.done
    assert requests.get(server.http_url + "/readyz", timeout=READ_DEADLINE).status_code == 200
    assert requests.get(server.http_url + "/healthz", timeout=READ_DEADLINE).status_code == 200
    return stub, write, holder, doomed


def test_reads_answer_while_a_write_waits_and_the_write_succeeds_once_the_lock_goes(
    make_server: Callable[..., ServerThread],
    lock_holders: Callable[[str], LockHolder],
    channels: list[grpc.Channel],
) -> None:
    stub, write, holder, doomed = _busy_scene(make_server, lock_holders, channels, 60.0)
    assert not write.done() and holder.holding  # everything above answered meanwhile

    holder.release()

    write.result(timeout=30)  # DeleteOperation succeeded
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetOperation(operations_pb2.GetOperationRequest(name=doomed), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_write_still_locked_out_after_its_busy_timeout_is_unavailable(
    make_server: Callable[..., ServerThread],
    lock_holders: Callable[[str], LockHolder],
    channels: list[grpc.Channel],
) -> None:
    stub, write, holder, doomed = _busy_scene(make_server, lock_holders, channels, 1.0)

    with pytest.raises(grpc.RpcError) as caught:
        write.result(timeout=30)

    assert holder.holding  # the lock was never let go: the write gave up on its own
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(grpc_status(caught.value)).reason == "STORE_BUSY"
    holder.release()
    answer = stub.GetOperation(operations_pb2.GetOperationRequest(name=doomed), timeout=10)
    assert answer.name == doomed  # nothing was deleted
