"""Operation life cycle: the only place that sets ``done``, ``response`` and ``error``.

A done operation never changes again (google-api-core stops polling at done), and a done
operation carries exactly one of ``response`` or ``error``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from lro_server.core.errors import Code, OperationDone
from lro_server.core.record import OperationRecord


def pack(message: Message) -> any_pb2.Any:
    """Wrap ``message`` in an Any with the standard type URL prefix."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def with_metadata(
    record: OperationRecord, metadata: Message, *, state: str | None = None, **fields: Any
) -> OperationRecord:
    """Return ``record`` with new metadata (and live state, and any other ``fields`` of the
    record), still not done."""
    _require_open(record)
    operation = operations_pb2.Operation()
    operation.CopyFrom(record.operation)
    operation.metadata.Pack(metadata)
    return dataclasses.replace(
        record, operation=operation, state=record.state if state is None else state, **fields
    )


def succeed(
    record: OperationRecord,
    response: Message,
    *,
    metadata: Message | None = None,
    state: str | None = None,
) -> OperationRecord:
    """Return ``record`` finished with ``response``."""
    operation = _finishing(record, metadata)
    operation.response.CopyFrom(pack(response))
    return _done(record, operation, state)


def fail(
    record: OperationRecord,
    code: Code,
    message: str,
    *,
    details: Iterable[Message] = (),
    metadata: Message | None = None,
    state: str | None = None,
) -> OperationRecord:
    """Return ``record`` finished with ``error`` = google.rpc.Status(code, message, details)."""
    if code == Code.OK:
        raise ValueError("a failed operation needs a non-OK code")
    operation = _finishing(record, metadata)
    status = status_pb2.Status(code=int(code), message=message)
    for detail in details:
        status.details.add().Pack(detail)
    operation.error.CopyFrom(status)
    return _done(record, operation, state)


def _require_open(record: OperationRecord) -> None:
    if record.done:
        raise OperationDone(
            f"{record.name} is done and can no longer change", metadata={"name": record.name}
        )


def _finishing(record: OperationRecord, metadata: Message | None) -> operations_pb2.Operation:
    _require_open(record)
    operation = operations_pb2.Operation(name=record.operation.name, done=True)
    if metadata is not None:
        operation.metadata.CopyFrom(pack(metadata))
    elif record.operation.HasField("metadata"):
        operation.metadata.CopyFrom(record.operation.metadata)
    return operation


def _done(
    record: OperationRecord, operation: operations_pb2.Operation, state: str | None
) -> OperationRecord:
    # A finished operation is never tracked again: drop its lease with the same write.
    return dataclasses.replace(
        record,
        operation=operation,
        state=record.state if state is None else state,
        lease_holder="",
        lease_expire_us=0,
    )
