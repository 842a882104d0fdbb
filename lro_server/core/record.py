"""OperationRecord: a google.longrunning.Operation plus the columns the server keeps with it.

Core works on the ``google.longrunning.Operation`` message itself (it is the domain object of
AIP-151) and on this record around it; everything gRPC-specific stays in ``api``.
Records are immutable values: change one with :func:`dataclasses.replace` and a new message.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from google.longrunning import operations_pb2

from lro_server.core.errors import FailedPrecondition, InvalidArgument

#: Largest serialized Operation (metadata plus response) a store accepts; Spanner cells stop
#: at 10 MiB, and one limit for every backend keeps them interchangeable.
MAX_OPERATION_BYTES = 8 * 1024 * 1024
#: Largest checkpoint a store accepts.
MAX_CHECKPOINT_BYTES = 8 * 1024 * 1024
#: Largest work description (JSON) a store accepts.
MAX_WORK_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class OperationRecord:
    """One stored operation.

    Attributes:
        operation: The operation as clients see it.
        version: Compare-and-set version; 1 after create, +1 on every update.
        create_time_us: Creation time, microseconds since the epoch.
        update_time_us: Last update time, microseconds since the epoch.
        owner: Principal that created the operation ("" when auth is off).
        request_id: AIP-155 request id the operation was created with ("" if none).
        method: Full name of the method that created it, e.g. ``lro.databricks.v1.Jobs/RunNow``.
        state: Live state of the external work (e.g. Databricks ``RUNNING``), for filtering.
        work: JSON-compatible description of the external work, owned by its runner.
        checkpoint: Checkpoint of a resumable method (language-neutral bytes), if any.
        lease_holder: Replica currently tracking the operation.
        lease_expire_us: When that claim ends unless renewed.
    """

    operation: operations_pb2.Operation
    version: int = 0
    create_time_us: int = 0
    update_time_us: int = 0
    owner: str = ""
    request_id: str = ""
    method: str = ""
    state: str = ""
    work: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint: bytes | None = None
    lease_holder: str = ""
    lease_expire_us: int = 0

    @property
    def name(self) -> str:
        """The operation's name."""
        return str(self.operation.name)

    @property
    def done(self) -> bool:
        """Whether the operation has finished."""
        return bool(self.operation.done)

    @property
    def metadata_type(self) -> str:
        """Full message name of the metadata ("" when there is none)."""
        url: str = self.operation.metadata.type_url
        return url.rsplit("/", 1)[-1] if url else ""

    @property
    def error_code(self) -> int | None:
        """``error.code`` when the operation failed, else None."""
        return self.operation.error.code if self.operation.HasField("error") else None


def for_create(record: OperationRecord, now_us: int) -> OperationRecord:
    """The record as every store creates it: named, version 1, times set.

    The creator's ``create_time_us`` wins when set (its metadata and deadline were computed
    from it); otherwise the store's clock reading ``now_us`` is used.
    """
    if not record.name:
        raise InvalidArgument("operation.name is required", metadata={"field": "name"})
    created = record.create_time_us or now_us
    return dataclasses.replace(record, version=1, create_time_us=created, update_time_us=created)


def writable_work(record: OperationRecord) -> str:
    """The ``work`` column (compact JSON) after checking every size limit.

    Stores call this before writing anything, so an oversized or non-JSON record changes
    nothing: FailedPrecondition names the limit, InvalidArgument says what is not JSON.
    """
    try:
        work = json.dumps(dict(record.work), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"work is not JSON-serializable: {exc}") from exc
    check_sizes(record, work)
    return work


def check_sizes(record: OperationRecord, serialized_work: str | None = None) -> None:
    """Raise FailedPrecondition naming the limit when a record is too large to store."""
    size = record.operation.ByteSize()
    if size > MAX_OPERATION_BYTES:
        raise _too_large("operation", size, MAX_OPERATION_BYTES)
    if record.checkpoint is not None and len(record.checkpoint) > MAX_CHECKPOINT_BYTES:
        raise _too_large("checkpoint", len(record.checkpoint), MAX_CHECKPOINT_BYTES)
    if serialized_work is not None and len(serialized_work) > MAX_WORK_BYTES:
        raise _too_large("work", len(serialized_work), MAX_WORK_BYTES)


def _too_large(what: str, size: int, limit: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"{what} is {size} bytes, over the limit of {limit} bytes",
        reason="SIZE_LIMIT_EXCEEDED",
        metadata={"field": what, "limit_bytes": str(limit), "size_bytes": str(size)},
    )
