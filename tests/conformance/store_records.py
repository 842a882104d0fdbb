"""Records and listing helpers shared by the store conformance tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from google.longrunning import operations_pb2
from google.protobuf import any_pb2, empty_pb2, struct_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from lro_server.core.clock import to_micros
from lro_server.core.filter import parse
from lro_server.core.pagetoken import Cursor
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery, OperationStore
from lro_server.testing.clock import DEFAULT_START

#: The fake clock's starting time in microseconds (create time of records made at once).
T0 = to_micros(DEFAULT_START)
METHOD = "lro.databricks.v1.Jobs/RunNow"


def name_for(n: int) -> str:
    """A valid, predictable operation name; larger ``n`` sorts later."""
    return f"operations/{uuid.UUID(int=n, version=4)}"


def packed(message: Message) -> any_pb2.Any:
    """``message`` in an Any."""
    result = any_pb2.Any()
    result.Pack(message)
    return result


def new_record(
    *,
    name: str | None = None,
    owner: str = "",
    request_id: str = "",
    method: str = METHOD,
    state: str = "PENDING",
    metadata: Message | any_pb2.Any | None = None,
    family: str = "",
    deadline_us: int = 0,
    cancel_requested: bool = False,
    traceparent: str = "",
    payload: str = "{}",
    checkpoint: bytes | None = None,
    done: bool = False,
    error_code: int | None = None,
    lease_holder: str = "",
    lease_expire_us: int = 0,
) -> OperationRecord:
    """An unstored record; ``done`` with no ``error_code`` means a response (Empty)."""
    operation = operations_pb2.Operation(name=name or f"operations/{uuid.uuid4()}", done=done)
    if metadata is None:
        metadata = struct_pb2.Struct(fields={"state": struct_pb2.Value(string_value=state)})
    operation.metadata.CopyFrom(metadata if isinstance(metadata, any_pb2.Any) else packed(metadata))
    if error_code is not None:
        operation.error.CopyFrom(status_pb2.Status(code=error_code, message="it failed"))
    elif done:
        operation.response.CopyFrom(packed(empty_pb2.Empty()))
    return OperationRecord(
        operation=operation,
        owner=owner,
        request_id=request_id,
        method=method,
        state=state,
        family=family,
        deadline_us=deadline_us,
        cancel_requested=cancel_requested,
        traceparent=traceparent,
        payload=payload,
        checkpoint=checkpoint,
        lease_holder=lease_holder,
        lease_expire_us=lease_expire_us,
    )


def names(records: Sequence[OperationRecord]) -> list[str]:
    """The names of ``records``, in order."""
    return [record.name for record in records]


def listing_order(records: Sequence[OperationRecord]) -> list[OperationRecord]:
    """``records`` in the order every store lists them."""
    return sorted(records, key=lambda r: (r.create_time_us, r.name), reverse=True)


async def list_page(
    store: OperationStore,
    *,
    filter: str = "",
    owner: str | None = None,
    after: Cursor | None = None,
    limit: int = 1000,
) -> list[OperationRecord]:
    """One call of ``store.list``; ``filter`` is AIP-160 text."""
    return await store.list(ListQuery(parse(filter), owner, after, limit))


async def list_all(
    store: OperationStore, *, page_size: int, filter: str = "", owner: str | None = None
) -> list[OperationRecord]:
    """Every matching record, fetched ``page_size`` at a time with keyset cursors."""
    found: list[OperationRecord] = []
    after: Cursor | None = None
    while True:
        page = await list_page(store, filter=filter, owner=owner, after=after, limit=page_size)
        assert len(page) <= page_size
        found.extend(page)
        if len(page) < page_size:
            return found
        after = Cursor(page[-1].create_time_us, page[-1].name)
