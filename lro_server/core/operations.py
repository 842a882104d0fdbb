"""The google.longrunning.Operations service, transport-free: get, list, cancel, delete, wait,
plus creating operations for the methods that start work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from google.longrunning import operations_pb2

from lro_server.core import filter as aip160
from lro_server.core import filter_ast, pagetoken, tracing
from lro_server.core.cas import compare_and_set
from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import (
    InvalidArgument,
    LroError,
    NotFound,
    Origin,
    PermissionDenied,
)
from lro_server.core.logcontext import set_operation
from lro_server.core.names import COLLECTION, new_operation_name, validate_operation_name
from lro_server.core.notify import Notifier
from lro_server.core.principal import Principal
from lro_server.core.record import OperationRecord
from lro_server.core.store import ListQuery, OperationStore, not_found

_log = logging.getLogger(__name__)

#: AIP-155 request ids longer than this are refused.
MAX_REQUEST_ID_LENGTH = 128


#: Stores a new record (no request id) and returns it as stored; lent to WorkRunner.start_and_store.
Create = Callable[[OperationRecord], Awaitable[OperationRecord]]


class WorkRunner(Protocol):
    """Runs the external work behind operations (implemented by the Databricks tracker)."""

    def prepare(self, record: OperationRecord) -> OperationRecord:
        """Complete a record before it is stored: initial metadata, deadline, lease."""
        ...

    async def start_and_store(
        self, record: OperationRecord, create: Create
    ) -> OperationRecord | None:
        """Start the work of a record that is not stored yet, if this runner can, and store
        it with ``create`` (one write instead of a create and an update).

        Returns the stored record, or None when the record must be stored first (the
        service then creates it and calls :meth:`start`). Raises the error that prevented
        the start (nothing was started, nothing stored), or the error of ``create`` (the
        runner has tried to stop the work it started).
        """
        ...

    async def start(self, record: OperationRecord) -> OperationRecord:
        """Start the work of a freshly created record and begin tracking it.

        Raises the error that prevented the start (e.g. InvalidArgument for a request
        Databricks refused); a transient failure returns the record unstarted, and the
        runner retries the start later with the same idempotency token.
        """
        ...

    async def request_cancel(self, record: OperationRecord) -> None:
        """Ask for the work of ``record`` (``cancel_requested`` is set) to stop soon."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceLimits:
    """Tunables of the Operations service (from settings)."""

    default_page_size: int = 50
    max_page_size: int = 1000
    page_token_key: bytes = b"lro-server-page-tokens"
    max_wait_seconds: float = 600.0
    #: Re-read interval of a waiter, for completions written by another replica.
    reread_seconds: float = 1.0
    #: Longest re-read interval once the operation stays unchanged.
    max_reread_seconds: float = 5.0


class OperationsService:
    """AIP-151 operations over an OperationStore."""

    def __init__(
        self,
        store: OperationStore,
        runner: WorkRunner,
        *,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        limits: ServiceLimits | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier(clock=self.clock)
        self.limits = limits or ServiceLimits()

    # -- starting work -------------------------------------------------------------------

    async def start(
        self,
        *,
        caller: Principal,
        method: str,
        family: str,
        payload: str,
        timeout_seconds: float,
        request_id: str = "",
        state: str = "",
        labels: Mapping[str, str] | None = None,
        name: str = "",
    ) -> operations_pb2.Operation:
        """Create an operation and start its work; AIP-155 dedupe on ``request_id``.

        Args:
            caller: Who starts it (its owner).
            method: Full name of the method, e.g. ``lro.databricks.v1.Jobs/RunNow``.
            family: The kind of work, which picks the runner (see WorkRunner).
            payload: The runner's own description of the work (JSON object text).
            timeout_seconds: The operation fails DEADLINE_EXCEEDED this long after its
                creation (0: no deadline).
            request_id: AIP-155 request id ("" for none).
            state: Initial live state, for filters.
            labels: The caller's labels (already validated), kept with the operation.
            name: The operation's name, chosen by the server itself (a durable method
                names its children before starting them); "" for a fresh one.

        Returns the operation at once; the runner follows the work from here.
        """
        validate_request_id(request_id)
        digest = request_digest(method, family, payload) if request_id else ""
        now = to_micros(self.clock.now())
        record = OperationRecord(
            operation=operations_pb2.Operation(
                name=validate_operation_name(name) if name else new_operation_name()
            ),
            create_time_us=now,
            update_time_us=now,
            owner=caller.subject,
            request_id=request_id,
            request_digest=digest,
            method=method,
            state=state,
            family=family,
            deadline_us=now + round(timeout_seconds * 1_000_000) if timeout_seconds > 0 else 0,
            # Polls and resumes of this operation join the trace of the call starting it.
            traceparent=tracing.current_traceparent(),
            payload=payload,
            labels=dict(labels or {}),
        )
        record = self.runner.prepare(record)
        set_operation(record.name)  # every later log line of this call names the operation
        if not request_id:
            # Nothing to deduplicate: the runner may start the work first and store the
            # record once, with the work's ids. With a request id the record is stored
            # first, so that a retried call finds it (and its work) instead of starting
            # a second one.
            launched = await self.runner.start_and_store(record, self._create)
            if launched is not None:
                return launched.operation
        stored, created = await self.store.create(record)
        set_operation(stored.name)
        if not created:
            if stored.method != method:
                raise InvalidArgument(
                    f"request_id {request_id!r} was already used for {stored.method}",
                    reason="REQUEST_ID_REUSED",
                    metadata={"field": "request_id", "operation": stored.name},
                )
            if stored.request_digest and stored.request_digest != digest:
                raise InvalidArgument(
                    f"request_id {request_id!r} was already used for a different request "
                    f"({stored.name}); use a new request_id for a new request",
                    reason="REQUEST_ID_REUSED",
                    metadata={"field": "request_id", "operation": stored.name},
                )
            _log.info("%s: request_id %r seen before, returning it", stored.name, request_id)
            return stored.operation
        try:
            stored = await self.runner.start(stored)
        except LroError:
            # Nothing was started: forget the record so no orphan pends forever.
            await self._forget(stored.name)
            raise
        return stored.operation

    async def _create(self, record: OperationRecord) -> OperationRecord:
        stored, _ = await self.store.create(record)  # no request id: always a new record
        return stored

    async def _forget(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.store.delete(name)

    # -- the five methods ------------------------------------------------------------------

    async def get(self, name: str, caller: Principal) -> operations_pb2.Operation:
        """GetOperation."""
        # Not through _visible: one coroutine fewer, and every GetOperation passes here.
        name = validate_operation_name(name)
        return _seen(await self.store.get(name), name, caller).operation

    def get_cached(self, name: str, caller: Principal) -> operations_pb2.Operation | None:
        """GetOperation from the store's memory (OperationStore.cached), without awaiting;
        None when the store cannot answer so (then :meth:`get`). NotFound, as get, when
        the caller may not see the operation.

        The name is not validated: a name the store holds is one the server gave (an
        invalid or bare one is not held, and get then says what is wrong with it).
        """
        record = self.store.cached(name)
        if record is None:
            return None
        if not caller.may_see(record.owner):  # as _seen, inline: every GetOperation
            raise not_found(name, origin=Origin.SERVER)
        return record.operation

    async def list(
        self, name: str, filter_text: str, page_size: int, page_token: str, caller: Principal
    ) -> tuple[list[operations_pb2.Operation], str]:
        """ListOperations: AIP-160 filter, AIP-158 pages. Returns (operations, next token)."""
        if name not in ("", COLLECTION):
            raise InvalidArgument(
                f"name must be {COLLECTION!r} (or empty), got {name[:100]!r}",
                metadata={"field": "name"},
            )
        size = pagetoken.page_size(
            page_size, default=self.limits.default_page_size, maximum=self.limits.max_page_size
        )
        expr = aip160.parse(filter_text)
        canonical = filter_ast.canonical(expr)
        owner = None if caller.admin else caller.subject
        scope = "*" if owner is None else "owner:" + owner
        key = self.limits.page_token_key
        after = (
            pagetoken.decode(key, page_token, filter_canonical=canonical, scope=scope)
            if page_token
            else None
        )
        records = await self.store.list(
            ListQuery(filter=expr, owner=owner, after=after, limit=size + 1)
        )
        next_token = ""
        if len(records) > size:
            records = records[:size]
            last = records[-1]
            next_token = pagetoken.encode(
                key,
                filter_canonical=canonical,
                scope=scope,
                last_create_time_us=last.create_time_us,
                last_name=last.name,
            )
        return [r.operation for r in records], next_token

    async def cancel(self, name: str, caller: Principal) -> None:
        """CancelOperation: best effort; the operation ends CANCELLED once the work stopped.

        Cancelling a done operation changes nothing.
        """
        record = await self._visible(name, caller, manage=True)
        record = await compare_and_set(self.store, record.name, _request_cancel, current=record)
        if not record.done:
            _log.info("%s: cancellation requested", name)
            await self.runner.request_cancel(record)

    async def delete(self, name: str, caller: Principal) -> None:
        """DeleteOperation: forget the record; the work itself is not cancelled."""
        await self._visible(name, caller, manage=True)
        await self.store.delete(validate_operation_name(name))
        _log.info("%s: deleted", name)

    async def wait(
        self, name: str, timeout: float | None, caller: Principal
    ) -> operations_pb2.Operation:
        """WaitOperation: the operation once done, or its latest state after ``timeout``.

        ``timeout`` is already the shorter of the request's timeout and the RPC deadline
        (None: neither was given); it is capped at ``max_wait_seconds``.
        """
        record = await self._visible(name, caller)
        budget = self.limits.max_wait_seconds if timeout is None else timeout
        budget = min(max(budget, 0.0), self.limits.max_wait_seconds)
        deadline = self.clock.monotonic() + budget
        interval = self.limits.reread_seconds
        if record.done or budget <= 0:
            return record.operation
        with self.notifier.admit():  # ResourceExhausted past max_waiters held calls
            while not record.done:
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0 or self.notifier.draining:
                    break  # a stopping server answers held waits with the latest state
                woken = await self.notifier.wait(record.name, min(remaining, interval))
                handed = woken.record
                if handed is not None and handed.version > record.version:
                    record = handed  # the writer's own record: no store read per waiter
                    continue
                latest = await self._visible(record.name, caller)
                if not woken and latest.version == record.version:
                    interval = min(interval * 2, self.limits.max_reread_seconds)
                record = latest
        return record.operation

    async def _visible(
        self, name: str, caller: Principal, *, manage: bool = False
    ) -> OperationRecord:
        name = validate_operation_name(name)
        record = _seen(await self.store.get(name), name, caller)
        if manage and not caller.may_manage(record.owner):
            # A waiter reads every owner's operations but changes none of them.
            raise PermissionDenied(
                f"the caller may read {name} but not change it",
                reason="NOT_OWNER",
                metadata={"name": name},
            )
        return record


def _request_cancel(record: OperationRecord) -> OperationRecord | None:
    """The change CancelOperation writes (nothing once done or already requested)."""
    if record.done or record.cancel_requested:
        return None
    return dataclasses.replace(record, cancel_requested=True)


def request_digest(method: str, family: str, payload: str) -> str:
    """What identifies a start request for AIP-155: its method and its work, not its
    request id or timeout (a retried chain step asks for the time its chain has left).

    The payload is compared as JSON with sorted keys: the same request may be serialized
    with its keys in another order (protobuf maps, such as a Struct's fields, have no
    order, and another process iterates them differently).
    """
    try:
        canonical = json.dumps(json.loads(payload), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = payload  # not JSON: the store refuses it anyway
    text = "\n".join((method, family, canonical))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def validate_request_id(request_id: str) -> None:
    """AIP-155: printable, at most 128 characters."""
    if len(request_id) > MAX_REQUEST_ID_LENGTH or not request_id.isprintable():
        raise InvalidArgument(
            f"request_id must be printable and at most {MAX_REQUEST_ID_LENGTH} characters",
            metadata={"field": "request_id"},
        )


def timeout_seconds(
    seconds: float, *, default: float, maximum: float, field: str = "timeout"
) -> float:
    """Validate an operation timeout: 0/unset → default; negative or too long → error."""
    if seconds == 0:
        return default
    if seconds < 0 or not math.isfinite(seconds) or seconds > maximum:
        raise InvalidArgument(
            f"{field} must be positive and at most {maximum:g} seconds",
            metadata={"field": field},
        )
    return seconds


def _seen(record: OperationRecord, name: str, caller: Principal) -> OperationRecord:
    """``record``, or NotFound if ``caller`` may not see it: the same answer as for a
    missing operation, so existence does not leak."""
    if not caller.may_see(record.owner):
        raise not_found(name, origin=Origin.SERVER)
    return record
