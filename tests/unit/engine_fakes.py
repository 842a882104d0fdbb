"""Fakes of the unit tier: a Databricks family, a runner, a resumable method, a waiter, and
a store that lets a test write in the middle of someone else's compare-and-set.

Everything runs on the test's event loop with the in-memory store and a FakeClock: no
sockets, no threads, no sleeps.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from google.longrunning import operations_pb2
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.core import lifecycle
from lro_server.core.errors import Code, LroError
from lro_server.core.operations import Create
from lro_server.core.record import OperationRecord
from lro_server.core.store import ExpiryCursor, JournalEvent, ListQuery, OperationStore
from lro_server.databricks.client import Databricks
from lro_server.databricks.family import PENDING, Observation, Tracked, Verdict
from lro_server.databricks.work import Entity, Work
from lro_server.resume.method import Advance, Resumption
from lro_server.resume.waiter import WaitTicket

#: The families ignore the client: nothing in the unit tier talks to Databricks.
NO_DATABRICKS = cast(Databricks, None)


def struct(**fields: Any) -> struct_pb2.Struct:
    """A Struct of ``fields`` (the fakes' metadata and responses)."""
    message = struct_pb2.Struct()
    message.update(fields)
    return message


class FakeFamily:
    """A Databricks family whose entities are states the test sets (metadata: RunMetadata).

    ``states[run_id]`` is ``"RUNNING"``, ``"SUCCESS"``, ``"FAILED"`` or ``"CANCELED"``
    (missing: ``"PENDING"``); ``fail_next[call]`` raises once from that call
    (``start``, ``observe``, ``cancel``, ``observe_many``).
    """

    name = "fake"

    def __init__(self) -> None:
        self.states: dict[int, str] = {}
        self.fail_next: dict[str, LroError] = {}
        self.starts: list[tuple[str, bool]] = []  # (token, retry)
        self.observed: list[int] = []
        self.cancels: list[int] = []
        self._next_run = 100

    def initial_metadata(self, work: Work) -> Message:
        return jobs_pb2.RunMetadata(life_cycle_state="PENDING")

    def _maybe_fail(self, call: str) -> None:
        error = self.fail_next.pop(call, None)
        if error is not None:
            raise error

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        self.starts.append((token, retry))
        self._maybe_fail("start")
        self._next_run += 1
        return Entity(run_id=self._next_run)

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        self.observed.append(work.ids.run_id)
        self._maybe_fail("observe")
        return self.judge(work)

    def judge(self, work: Work) -> Observation:
        state = self.states.get(work.ids.run_id, "PENDING")
        metadata = jobs_pb2.RunMetadata(
            life_cycle_state=state, run_id=work.ids.run_id, cancel_requested=work.cancel_requested
        )
        if state in ("PENDING", "RUNNING"):
            return Observation(state=state, metadata=metadata, verdict=PENDING)
        if state == "SUCCESS":
            return Observation(
                state=state,
                metadata=metadata,
                verdict=Verdict(done=True),
                response=struct(run_id=work.ids.run_id),
            )
        code = Code.CANCELLED if state == "CANCELED" else Code.UNKNOWN
        return Observation(
            state=state,
            metadata=metadata,
            verdict=Verdict(done=True, code=code, message=f"run {work.ids.run_id} {state}"),
        )

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        self.cancels.append(work.ids.run_id)
        self._maybe_fail("cancel")


class FakeBatchFamily(FakeFamily):
    """A FakeFamily that can also list: ``listed`` runs are on the lists."""

    name = "fakebatch"

    def __init__(self) -> None:
        super().__init__()
        self.listed: set[int] = set()
        self.list_calls = 0

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        self.list_calls += 1
        self._maybe_fail("observe_many")
        return [self.judge(work) if work.ids.run_id in self.listed else None for work, _ in tracked]


class FakeRunner:
    """A WorkRunner that stamps a marker, records what it is asked, and fails on demand."""

    def __init__(self) -> None:
        self.prepared: list[str] = []
        self.started: list[str] = []
        self.cancels: list[str] = []
        self.fail_start: LroError | None = None

    def prepare(self, record: OperationRecord) -> OperationRecord:
        self.prepared.append(record.name)
        return lifecycle.with_metadata(record, struct(prepared=True))

    async def start_and_store(
        self, record: OperationRecord, create: Create
    ) -> OperationRecord | None:
        return None  # stored first, then started (the path of requests with an id)

    async def start(self, record: OperationRecord) -> OperationRecord:
        self.started.append(record.name)
        if self.fail_start is not None:
            raise self.fail_start
        return record

    async def request_cancel(self, record: OperationRecord) -> None:
        self.cancels.append(record.name)


Meddle = Callable[[OperationRecord], Awaitable[None]]


class MeddlingStore:
    """An OperationStore that runs ``meddle(record)`` just before the next ``times``
    updates (or journal appends) of ``name`` reach the inner store: the test's concurrent
    writer, guaranteed to win the race."""

    def __init__(self, inner: OperationStore) -> None:
        self.inner = inner
        self._meddles: dict[str, tuple[Meddle, int]] = {}
        self.updates = 0
        self.appends = 0

    def before_update(self, name: str, meddle: Meddle, *, times: int = 1) -> None:
        """Run ``meddle`` before each of the next ``times`` updates of ``name``."""
        self._meddles[name] = (meddle, times)

    async def create(self, record: OperationRecord) -> tuple[OperationRecord, bool]:
        return await self.inner.create(record)

    async def get(self, name: str) -> OperationRecord:
        return await self.inner.get(name)

    def cached(self, name: str) -> OperationRecord | None:
        return self.inner.cached(name)

    async def get_many(self, names: Sequence[str]) -> builtins.list[OperationRecord | None]:
        return await self.inner.get_many(names)

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        return await self.inner.list(query)

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        self.updates += 1
        await self._meddle(record)
        return await self.inner.update(record, journal=journal)

    async def append(self, record: OperationRecord, journal: Sequence[JournalEvent]) -> None:
        self.appends += 1
        await self._meddle(record)
        await self.inner.append(record, journal)

    async def _meddle(self, record: OperationRecord) -> None:
        pending = self._meddles.get(record.name)
        if pending is not None:
            meddle, times = pending
            if times <= 1:
                del self._meddles[record.name]
            else:
                self._meddles[record.name] = (meddle, times - 1)
            await meddle(record)

    async def update_many(
        self, records: Sequence[OperationRecord]
    ) -> builtins.list[OperationRecord | LroError]:
        self.updates += len(records)
        for record in records:
            await self._meddle(record)
        return await self.inner.update_many(records)

    async def journal(self, name: str, after_seq: int = 0) -> builtins.list[JournalEvent]:
        return await self.inner.journal(name, after_seq)

    async def delete(self, name: str) -> None:
        await self.inner.delete(name)

    async def expired(
        self, before_us: int, after: ExpiryCursor | None, limit: int
    ) -> builtins.list[OperationRecord]:
        return await self.inner.expired(before_us, after, limit)

    async def claim(
        self, holder: str, lease_seconds: float, limit: int
    ) -> builtins.list[OperationRecord]:
        return await self.inner.claim(holder, lease_seconds, limit)

    async def release(self, holder: str, names: builtins.list[str]) -> None:
        await self.inner.release(holder, names)

    async def lease_holders(self) -> dict[str, int]:
        return await self.inner.lease_holders()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


async def bump(store: OperationStore, name: str, **changes: Any) -> OperationRecord:
    """Write ``changes`` to ``name`` as another writer would (one compare-and-set)."""
    current = await store.get(name)
    return await store.update(dataclasses.replace(current, **changes))


@dataclasses.dataclass
class ScriptedMethod:
    """A resumable method driven by the test: ``begin`` waits on ``first_children``;
    each resume returns what ``decide(resumption)`` says (default: succeed)."""

    method: str = "test.v1.Steps/Run"
    resume_method: str = "test.v1.Steps/Run"
    metadata_type: str = "google.protobuf.Struct"
    first_children: tuple[str, ...] = ()
    decide: Callable[[Resumption], Awaitable[Advance]] | None = None
    resumptions: list[Resumption] = dataclasses.field(default_factory=list)

    def initial(self, record: OperationRecord) -> tuple[dict[str, Any], Message]:
        return {"step": 0}, struct(step=0)

    async def begin(self, parent: OperationRecord, state: Any) -> Advance:
        return Advance(
            state={"step": 1},
            metadata=struct(step=1),
            live_state="WAITING",
            wait_on=self.first_children,
        )

    async def resume(self, resumption: Resumption) -> Advance:
        self.resumptions.append(resumption)
        if self.decide is not None:
            return await self.decide(resumption)
        return Advance(
            state={"step": 2},
            metadata=struct(step=2),
            live_state="SUCCEEDED",
            response=struct(ok=True),
        )


class FakeWaiter:
    """A Waiter that only records what it is handed (the test resumes by hand)."""

    kind = "fake"

    def __init__(self) -> None:
        self.handed: list[WaitTicket] = []
        self.restored: list[WaitTicket] = []
        self.forgotten: list[str] = []
        self.fail_next: LroError | None = None

    async def hand_off(self, ticket: WaitTicket) -> str:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.handed.append(ticket)
        return f"executions/{len(self.handed)}"

    async def restore(self, ticket: WaitTicket) -> None:
        self.restored.append(ticket)

    def forget(self, parent: str) -> None:
        self.forgotten.append(parent)


def child_record(name: str, *, done: bool = False, failed: bool = False) -> OperationRecord:
    """A child operation to create in the store directly."""
    operation = operations_pb2.Operation(name=name)
    record = OperationRecord(operation=operation, family="fake", method="test.v1.Child/Run")
    if failed:
        return lifecycle.fail(record, Code.UNKNOWN, "child failed")
    if done:
        return lifecycle.succeed(record, struct(child=name))
    return record
