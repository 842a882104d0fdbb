"""The resumable-method port: what a multi-step method implements to wait on children.

A resumable method never holds a request (or a thread) open while children run. It
returns an :class:`Advance` that says what to store and which children to wait for; the
:class:`~lro_server.resume.engine.Resumer` commits it (compare-and-set on the parent's
record) and hands the wait to a waiter. When the children are done (or the wait timed
out) the waiter calls the method again, and the method continues from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from google.protobuf.message import Message

from lro_server.core import lifecycle
from lro_server.core.errors import Code, InvalidArgument, NotFound
from lro_server.core.names import operation_id
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.resume.checkpoint import Checkpoint


class WaitOutcome(enum.Enum):
    """What the waiter reports when it resumes (header ``x-lro-wait-outcome``)."""

    #: Every child was seen done (the default; the method re-reads them anyway).
    DONE = "done"
    #: The wait reached the parent's deadline with children still running.
    TIMEOUT = "timeout"
    #: The waiter could not follow a child (e.g. GetOperation kept failing).
    ERROR = "error"

    @staticmethod
    def parse(text: str) -> WaitOutcome:
        """Parse a header value; empty means DONE, anything unknown is an error."""
        try:
            return WaitOutcome(text.strip().lower() or "done")
        except ValueError:
            raise InvalidArgument(
                f"x-lro-wait-outcome must be done, timeout or error, got {text[:40]!r}",
                metadata={"field": "x-lro-wait-outcome"},
            ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """How a method fails its operation: google.rpc.Status code, message and details."""

    code: Code
    message: str
    details: tuple[Message, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Advance:
    """What a method decided; the engine stores it in one compare-and-set write.

    Exactly one of: ``wait_on`` non-empty (keep going later), ``response`` (succeed),
    ``failure`` (fail).

    Attributes:
        state: The method's new JSON state (the checkpoint's ``state``).
        metadata: The parent's new metadata.
        live_state: The parent's live state for filtering (``metadata.state``).
        wait_on: Child operations to wait for, all of them.
        response: The parent's response when it succeeds.
        failure: The parent's error when it fails.
        cancel: Child operations to cancel once the decision is stored.
    """

    state: Mapping[str, Any]
    metadata: Message
    live_state: str
    wait_on: tuple[str, ...] = ()
    response: Message | None = None
    failure: Failure | None = None
    cancel: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        outcomes = sum((bool(self.wait_on), self.response is not None, self.failure is not None))
        if outcomes != 1:
            raise ValueError("an Advance needs exactly one of wait_on, response or failure")

    def applied_to(self, record: OperationRecord, checkpoint: bytes) -> OperationRecord:
        """``record`` as this decision leaves it, with the encoded ``checkpoint``."""
        if self.failure is not None:
            failure = self.failure
            finished = lifecycle.fail(
                record,
                failure.code,
                failure.message,
                details=failure.details,
                metadata=self.metadata,
                state=self.live_state,
            )
        elif self.response is not None:
            finished = lifecycle.succeed(
                record, self.response, metadata=self.metadata, state=self.live_state
            )
        else:
            finished = lifecycle.with_metadata(record, self.metadata, state=self.live_state)
        return dataclasses.replace(finished, checkpoint=checkpoint)


@dataclasses.dataclass(frozen=True, slots=True)
class Committed:
    """A decision as written: by a method itself (durable methods commit their journal
    events with the record), or by the engine's commit of an :class:`Advance`. The engine
    follows it up: cancels ``cancel``, hands the wait off.

    Attributes:
        record: The record as stored by the method's last write.
        checkpoint: Its checkpoint.
        cancel: Child operations to cancel now.
        wrote: False when another writer moved the operation on first (a no-op).
    """

    record: OperationRecord
    checkpoint: Checkpoint
    cancel: tuple[str, ...] = ()
    wrote: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class RunNow:
    """A first move that writes nothing: the engine resumes the method at once, in the
    background, as it stands (no children), so the start answers without waiting for it.
    Until the method's own first commit the record is where its create left it (``seq``
    0, not waiting), which recovery and the stalled sweep begin again should this process
    die first."""


#: What a method's move returns.
Decision = Advance | Committed | RunNow


@dataclasses.dataclass(frozen=True, slots=True)
class Resumption:
    """Everything a method sees when it is resumed.

    Attributes:
        parent: The parent's record as stored now.
        state: The method's state from the checkpoint.
        children: The awaited children's records, as stored now (None: deleted).
        timed_out: The parent's deadline passed, or the waiter reported a timeout.
        waiter_failed: The waiter gave up following the children for good.
        checkpoint: The parent's checkpoint, as the engine decoded it (None: not decoded).
    """

    parent: OperationRecord
    state: Mapping[str, Any]
    children: Mapping[str, OperationRecord | None]
    timed_out: bool = False
    waiter_failed: bool = False
    checkpoint: Checkpoint | None = None

    @property
    def cancel_requested(self) -> bool:
        """Whether CancelOperation was called on the parent."""
        return self.parent.cancel_requested


async def read(store: OperationStore, name: str) -> OperationRecord | None:
    """The operation ``name`` as stored now, or None when it does not exist (a child
    deleted, as :attr:`Resumption.children` holds it)."""
    try:
        return await store.get(name)
    except NotFound:
        return None


async def read_all(
    store: OperationStore, names: Iterable[str]
) -> dict[str, OperationRecord | None]:
    """The operations ``names`` as stored now (None for one that does not exist), read in
    one round trip where the store can (a fan-out's children are read together)."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    return dict(zip(wanted, await store.get_many(wanted), strict=True))


class ResumableMethod(Protocol):
    """A method that keeps a checkpoint and waits on child operations."""

    #: Full RPC name, e.g. ``lro.databricks.v1.Chains/RunChain`` (the record's ``method``).
    method: str
    #: Full RPC name waiters call to resume (``method`` itself for RunChain).
    resume_method: str
    #: Full name of its metadata message (to find its waiting operations after a restart).
    metadata_type: str

    def initial(self, record: OperationRecord) -> tuple[Mapping[str, Any], Message]:
        """The method's initial state and metadata for a freshly created operation."""
        ...

    async def begin(self, parent: OperationRecord, state: Mapping[str, Any]) -> Decision:
        """First move after the operation was stored (typically: start the first child).

        Must be idempotent: after a crash it may run again for the same operation.
        Raising an LroError here fails the start RPC and forgets the operation.
        """
        ...

    async def resume(self, resumption: Resumption) -> Decision:
        """Continue once the wait is ready (every awaited child done, promise resolved and
        timer due; or cancel requested with every child done), timed out or failed.

        Must be idempotent (a lost compare-and-set runs it again): start children with
        request ids derived from the parent and the step, so a repeat finds them.
        """
        ...


def derived_request_id(prefix: str, parent: str, position: int) -> str:
    """The AIP-155 request id of a child: ``<prefix><parent id>-<position>``, so a
    repeated start of the same move finds the same child."""
    return f"{prefix}{operation_id(parent)}-{position}"


def parent_of_request(prefix: str, request_id: str) -> tuple[str, int] | None:
    """(parent name, position) named by a request id :func:`derived_request_id` made
    with ``prefix``; None for any other id."""
    if not request_id.startswith(prefix):
        return None
    parent_id, _, position = request_id[len(prefix) :].rpartition("-")
    if not parent_id or not position.isdigit():
        return None
    return f"operations/{parent_id}", int(position)
