"""A durable method's first activation, run at once after Start without a write before it:
a process that dies before that activation commits, a cancel that comes first, and a
commit that loses its compare-and-set to another activation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from durable_rig import durable_rig

from lro_server import durable
from lro_server.core.errors import Code
from lro_server.core.principal import INTERNAL
from lro_server.core.record import OperationRecord
from lro_server.core.store import JournalEvent, OperationStore
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.recovery import recover_waits


def counting_method(name: str, effects: list[str]) -> Any:
    @durable.method(name)
    async def two_steps(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("a", lambda: effects.append("a"))
        await ctx.step("b", lambda: effects.append("b"))
        return {"effects": len(effects)}

    return two_steps


async def test_start_writes_nothing_before_the_method_runs() -> None:
    effects: list[str] = []
    rig = durable_rig()
    rig.serve(counting_method("t.First", effects))

    name = await rig.start_only("t.First")

    record = await rig.record(name)
    assert record.version == 1 and record.state == "PENDING"
    assert Checkpoint.of(record).seq == 0 and Checkpoint.of(record).wait is None
    await rig.settle()
    assert await rig.result(name) == {"effects": 2} and effects == ["a", "b"]


async def test_a_method_whose_process_died_before_its_first_commit_is_begun_at_recovery() -> None:
    effects: list[str] = []
    rig = durable_rig()
    rig.serve(counting_method("t.Died", effects))
    name = await rig.start_only("t.Died")
    await rig.resumer.stop()  # the process dies before the activation ran
    assert effects == [] and Checkpoint.of(await rig.record(name)).seq == 0

    other = durable_rig(rig.clock, rig.store.inner.data)  # type: ignore[attr-defined]
    other.serve(counting_method("t.Died", effects))
    resumer = other.resumer
    await recover_waits(
        other.store, [other.engine], resumer.waiter, lambda r: resumer.spawn(resumer.start(r))
    )
    await other.settle()

    assert await other.result(name) == {"effects": 2} and effects == ["a", "b"]


async def test_a_cancel_before_the_first_activation_ends_it_cancelled_without_running_it() -> None:
    effects: list[str] = []
    rig = durable_rig()
    rig.serve(counting_method("t.CancelFirst", effects))
    name = await rig.start_only("t.CancelFirst")

    await rig.service.cancel(name, INTERNAL)
    await rig.settle()

    assert (await rig.error(name))[0] == Code.CANCELLED and effects == []


class _Overtaken:
    """Before the update armed with :attr:`overtake_next`, another activation commits the
    operation's next checkpoint (its seq + 1, not waiting), so that update loses."""

    def __init__(self, inner: OperationStore) -> None:
        self.inner = inner
        self.overtake_next = False

    async def update(
        self, record: OperationRecord, *, journal: Sequence[JournalEvent] = ()
    ) -> OperationRecord:
        if self.overtake_next:
            self.overtake_next = False
            stored = await self.inner.get(record.name)
            checkpoint = Checkpoint.of(stored)
            theirs = dataclasses.replace(checkpoint, seq=checkpoint.seq + 1, wait=None)
            await self.inner.update(dataclasses.replace(stored, checkpoint=theirs.encode()))
        return await self.inner.update(record, journal=journal)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_commit_that_another_activation_overtook_stops_this_one() -> None:
    effects: list[str] = []
    stores: list[_Overtaken] = []

    def wrap(inner: OperationStore) -> OperationStore:
        stores.append(_Overtaken(inner))
        return stores[0]  # type: ignore[return-value]

    rig = durable_rig(wrap=wrap)
    rig.serve(counting_method("t.Overtaken", effects))
    name = await rig.start_only("t.Overtaken")
    stores[0].overtake_next = True  # the first commit: the claim before step "a"

    await rig.settle()

    # Its retry sees the other activation's checkpoint: it stops before any effect.
    assert effects == []
    record = await rig.record(name)
    assert not record.done and Checkpoint.of(record).seq == 1
    assert await rig.store.journal(name) == []
