"""GetOperation answered from the store's memory (OperationStore.cached): never stale, and
visibility per owner still enforced on that path.

A polled operation is answered from the SQLite store's read cache and the bytes serialized
for it before; these tests make sure each such answer is the operation's current state
whoever changed it (this server, or another process writing the same file), that a deleted
operation is NOT_FOUND, and that another owner gets NOT_FOUND exactly as for a missing one.
Counting the service's awaited reads (``OperationsService.get``, which every other
GetOperation takes) shows the calls did take that path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import struct_pb2
from lro_steps import grpc_status
from secured import ADMIN, ALICE, BOB, WAITER, Secured, channel_to, secured_server

from lro_server.core.cas import compare_and_set
from lro_server.core.principal import Principal
from lro_server.core.record import OperationRecord
from lro_server.storage import SqliteStore

pytestmark = pytest.mark.xdist_group("get_cached")


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server's SQLite file lives."""
    return tmp_path_factory.mktemp("get-cached")


@pytest.fixture(scope="module")
def secured(directory: Path) -> Iterator[Secured]:
    """One authenticated server on a SQLite file."""
    with secured_server(directory) as running:
        yield running


@pytest.fixture(scope="module")
def channel(secured: Secured) -> Iterator[grpc.Channel]:
    """A channel to the server."""
    with channel_to(secured) as chan:
        yield chan


@pytest.fixture
def awaited_gets(secured: Secured, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names GetOperation read through ``OperationsService.get`` (the path not from
    memory), recorded by a wrapper around the real method."""
    service = secured.server.application.service
    real = service.get
    names: list[str] = []

    def counted(name: str, caller: Principal) -> Coroutine[Any, Any, operations_pb2.Operation]:
        names.append(name)
        return real(name, caller)

    monkeypatch.setattr(service, "get", counted)
    return names


def _get(channel: grpc.Channel, secured: Secured, name: str, who: str) -> operations_pb2.Operation:
    stub = operations_pb2_grpc.OperationsStub(channel)
    request = operations_pb2.GetOperationRequest(name=name)
    answer: operations_pb2.Operation = stub.GetOperation(
        request, metadata=secured.metadata(who), timeout=10
    )
    return answer


def _failure(channel: grpc.Channel, secured: Secured, name: str, who: str) -> tuple[object, ...]:
    """What a failed GetOperation tells its caller, the name blanked."""
    with pytest.raises(grpc.RpcError) as caught:
        _get(channel, secured, name, who)
    status = grpc_status(caught.value)
    return (
        caught.value.code(),
        status.message.replace(name, "<name>"),
        status.SerializeToString().replace(name.encode(), b"<name>"),
    )


def _create(secured: Secured, owner: str) -> str:
    """An unfinished operation of ``owner``, leased by another replica for a day: nothing
    in this server writes it but the test."""
    name = f"operations/{uuid.uuid4()}"
    operation = operations_pb2.Operation(name=name)
    operation.metadata.Pack(
        struct_pb2.Struct(fields={"mark": struct_pb2.Value(string_value="new")})
    )
    record = OperationRecord(
        operation=operation,
        owner=owner,
        method="lro.databricks.v1.Jobs/RunNow",
        lease_holder="another-replica",
        lease_expire_us=int((time.time() + 86_400) * 1_000_000),
    )
    secured.server.run(secured.server.application.store.create(record))
    return name


def _labelled(record: OperationRecord, text: str) -> OperationRecord:
    """``record`` with its operation's metadata replaced by a Struct carrying ``text``."""
    operation = operations_pb2.Operation()
    operation.CopyFrom(record.operation)
    operation.metadata.Pack(struct_pb2.Struct(fields={"mark": struct_pb2.Value(string_value=text)}))
    return dataclasses.replace(record, operation=operation)


def _mark(operation: operations_pb2.Operation) -> str:
    metadata = struct_pb2.Struct()
    if not operation.metadata.Unpack(metadata):
        return ""
    return str(metadata.fields["mark"].string_value)


def test_a_polled_operation_is_answered_from_memory_and_never_stale(
    secured: Secured, channel: grpc.Channel, directory: Path, awaited_gets: list[str]
) -> None:
    name = _create(secured, ALICE)
    store = secured.server.application.store

    # This server writes: the next answer is the new state (served from memory after one
    # read of the store).
    secured.server.run(compare_and_set(store, name, lambda r: _labelled(r, "ours")))
    assert _mark(_get(channel, secured, name, ALICE)) == "ours"
    awaited = len(awaited_gets)
    for _ in range(3):
        assert _mark(_get(channel, secured, name, ALICE)) == "ours"
    assert len(awaited_gets) == awaited  # answered from memory, every time

    # Another process writes the same file: the next answer is its state.
    async def elsewhere() -> None:
        other = SqliteStore(directory / "lro.db")
        try:
            await compare_and_set(other, name, lambda r: _labelled(r, "theirs"))
        finally:
            await other.close()

    asyncio.run(elsewhere())
    assert _mark(_get(channel, secured, name, ALICE)) == "theirs"
    assert _mark(_get(channel, secured, name, ALICE)) == "theirs"

    # Done: the final state, then NOT_FOUND once deleted.
    def finish(record: OperationRecord) -> OperationRecord:
        done = _labelled(record, "done")
        done.operation.done = True
        done.operation.response.Pack(struct_pb2.Struct())
        return done

    secured.server.run(compare_and_set(store, name, finish))
    for _ in range(2):
        answer = _get(channel, secured, name, ALICE)
        assert answer.done and _mark(answer) == "done"
    operations_pb2_grpc.OperationsStub(channel).DeleteOperation(
        operations_pb2.DeleteOperationRequest(name=name),
        metadata=secured.metadata(ALICE),
        timeout=10,
    )
    missing = f"operations/{uuid.uuid4()}"
    assert _failure(channel, secured, name, ALICE) == _failure(channel, secured, missing, ALICE)
    assert _failure(channel, secured, name, ALICE)[0] == grpc.StatusCode.NOT_FOUND


def test_another_owner_gets_not_found_from_memory_too(
    secured: Secured, channel: grpc.Channel, awaited_gets: list[str]
) -> None:
    name = _create(secured, ALICE)
    assert _get(channel, secured, name, ALICE).name == name  # read once: now in memory
    missing = f"operations/{uuid.uuid4()}"

    awaited = len(awaited_gets)
    theirs = _failure(channel, secured, name, BOB)
    assert len(awaited_gets) == awaited  # refused on the path from memory
    assert theirs == _failure(channel, secured, missing, BOB)
    assert theirs[0] == grpc.StatusCode.NOT_FOUND

    # Those who may read every owner's operations still do, from memory as well.
    for reader in (ADMIN, WAITER, ALICE):
        assert _get(channel, secured, name, reader).name == name
