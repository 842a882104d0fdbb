"""A commit whose answer the store lost (applied, then Unavailable): the resume engine finds
its own checkpoint stored and follows it up, so the new wait is still handed off."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from engine_fakes import FakeWaiter, ScriptedMethod, child_record, struct

from lro_server.core import lifecycle
from lro_server.core.errors import Unavailable
from lro_server.core.operations import OperationsService
from lro_server.core.principal import INTERNAL, Principal
from lro_server.core.record import OperationRecord
from lro_server.core.store import JournalEvent, ListQuery, OperationStore
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.engine import Resumer
from lro_server.resume.method import Advance, Resumption
from lro_server.testing import MemoryStore
from lro_server.testing.clock import FakeClock

CHILD_A = "operations/00000000-0000-4000-8000-00000000000a"
CHILD_B = "operations/00000000-0000-4000-8000-00000000000b"


class LosingStore:
    """Applies the next update, then answers Unavailable (a commit of unknown outcome)."""

    def __init__(self, inner: OperationStore) -> None:
        self.inner = inner
        self.lose_next = False

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        stored = await self.inner.update(record, journal=journal)
        if self.lose_next:
            self.lose_next = False
            raise Unavailable("answer lost")
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list(self, query: ListQuery) -> builtins.list[OperationRecord]:
        return await self.inner.list(query)


async def test_a_lost_answer_of_a_resume_commit_still_hands_the_new_wait_off() -> None:
    clock = FakeClock()
    store = LosingStore(MemoryStore(clock))
    for child in (CHILD_A, CHILD_B):
        await store.create(child_record(child))

    async def next_step(resumption: Resumption) -> Advance:
        return Advance(
            state={"step": 2}, metadata=struct(step=2), live_state="W", wait_on=(CHILD_B,)
        )

    method = ScriptedMethod(first_children=(CHILD_A,), decide=next_step)
    resumer = Resumer(store, [method], clock=clock)  # type: ignore[arg-type]
    waiter = FakeWaiter()

    async def cancel(name: str) -> None:
        return None

    resumer.bind(waiter, cancel)
    service = OperationsService(store, resumer, clock=clock)  # type: ignore[arg-type]
    op = await service.start(
        caller=Principal(subject="a"),
        method=method.method,
        family="x",
        payload="{}",
        timeout_seconds=60,
    )
    child = await store.get(CHILD_A)
    await store.update(lifecycle.succeed(child, struct(done=True)))

    store.lose_next = True
    await resumer.resume(op.name, INTERNAL, method=method.method, wait_id=1)

    checkpoint = Checkpoint.of(await store.get(op.name))
    assert checkpoint.wait is not None and checkpoint.wait.children == (CHILD_B,)
    assert [t.wait_id for t in waiter.handed] == [1, checkpoint.wait.id]


async def test_a_lost_answer_of_a_durable_wait_commit_still_arms_its_timer() -> None:
    from durable_rig import durable_rig

    from lro_server import durable

    @durable.method("t.LostAnswer")
    async def lost(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("first", lambda: 1)
        await ctx.sleep(5)
        return {"ok": True}

    losing: list[LosingStore] = []

    def wrap(inner: OperationStore) -> OperationStore:
        losing.append(LosingStore(inner))
        return losing[0]  # type: ignore[return-value]

    rig = durable_rig(wrap=wrap)
    rig.serve(lost)
    original = rig.engine.writer.write
    calls = []

    async def write(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the claim before "first", then the wait on the timer
            losing[0].lose_next = True
        return await original(*args, **kwargs)

    rig.engine.writer.write = write  # type: ignore[method-assign]
    name = await rig.start("t.LostAnswer")
    assert Checkpoint.of(await rig.record(name)).wait is not None

    await rig.advance(5)

    assert await rig.result(name) == {"ok": True}
