"""OperationRecord: a google.longrunning.Operation plus the columns the server keeps with it.

Core works on the ``google.longrunning.Operation`` message itself (it is the domain object of
AIP-151) and on this record around it; everything gRPC-specific stays in ``api``.
Records are immutable values: change one with :func:`dataclasses.replace` and a new message.

What core decides about the work behind an operation is typed here (its runner's
``family``, ``deadline_us``, ``cancel_requested``, the ``traceparent`` of the call that
started it). What only the runner reads (a Databricks family's entity ids, a chain's
steps) is the runner's own typed payload, kept as opaque JSON text in ``payload`` and
decoded by that runner alone; stores keep both in one ``work`` column
(:mod:`lro_server.core.work_column`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from google.longrunning import operations_pb2

from lro_server.core.errors import FailedPrecondition, InvalidArgument
from lro_server.core.labels import NO_KEYS, SearchKeys

#: Largest serialized Operation (metadata plus response) a store accepts; Spanner cells stop
#: at 10 MiB, and one limit for every backend keeps them interchangeable.
MAX_OPERATION_BYTES = 8 * 1024 * 1024
#: Largest checkpoint a store accepts.
MAX_CHECKPOINT_BYTES = 8 * 1024 * 1024
#: Largest work description (the ``work`` column: core's fields and the payload) a store
#: accepts.
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
        request_digest: Digest of the start request (method and payload), so that a
            request id reused for a different request is refused ("" if unknown).
        method: Full name of the method that created it, e.g. ``lro.databricks.v1.Jobs/RunNow``.
        state: Live state of the external work (e.g. Databricks ``RUNNING``), for filtering.
        family: The kind of work, which names its runner: a Databricks family (``jobs``,
            ``clusters``, ...) or a resumable method's (``chain``).
        deadline_us: When the operation times out, microseconds since the epoch (0: never).
        cancel_requested: CancelOperation was called; the runner stops the work.
        traceparent: W3C trace of the call that started the operation ("" if none), so
            later polls and resumes join that trace.
        payload: The runner's own state, a JSON object as compact text, read and written
            only by the runner of ``family`` through its typed payload class.
        checkpoint: Checkpoint of a resumable method (language-neutral bytes), if any.
        lease_holder: Replica currently tracking the operation.
        lease_expire_us: When that claim ends unless renewed.
        labels: The caller's labels (validated at the start; never changed).
        keys: The Databricks ids the operation is found by (set by its runner).
        hint_us: When a push hint (a webhook) last asked for a refresh; the replica
            holding the lease polls at once when it sees a newer one.
    """

    operation: operations_pb2.Operation
    version: int = 0
    create_time_us: int = 0
    update_time_us: int = 0
    owner: str = ""
    request_id: str = ""
    request_digest: str = ""
    method: str = ""
    state: str = ""
    family: str = ""
    deadline_us: int = 0
    cancel_requested: bool = False
    traceparent: str = ""
    payload: str = "{}"
    checkpoint: bytes | None = None
    lease_holder: str = ""
    lease_expire_us: int = 0
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    keys: SearchKeys = NO_KEYS
    hint_us: int = 0

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
    def timeout_seconds(self) -> float:
        """The operation's timeout (deadline minus creation), 0 when it has none."""
        if not self.deadline_us:
            return 0.0
        return max(0, self.deadline_us - self.create_time_us) / 1e6

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
