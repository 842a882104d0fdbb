"""The sweep of stranded waits on fake time: a timer lost with its replica, a dead waiter
execution handed off again once across replicas, children done long ago."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from durable_rig import durable_rig

from lro_server import durable
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.sweep import sweep_waits

RUN_NOW = "lro.databricks.v1.Jobs/RunNow"


@durable.method("t.Nap")
async def nap(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.sleep(60)
    return {"napped": True}


@durable.method("t.Child")
async def one_child(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    return {"run": await ctx.call(RUN_NOW, {"job_id": 1})}


async def test_a_timer_lost_with_its_replica_is_resumed_by_another_replicas_sweep() -> None:
    dead = durable_rig()
    dead.serve(nap)
    name = await dead.start("t.Nap")
    await dead.resumer.stop()  # the replica dies: its in-memory timer goes with it
    dead.resumer.waiter.forget(name)
    alive = durable_rig(dead.clock, dead.store.inner.data)  # type: ignore[attr-defined]
    alive.serve(nap)

    await alive.advance(61)
    counts = await sweep_waits(
        alive.store, alive.resumer, [alive.engine], alive.clock, overdue_seconds=30
    )
    assert counts.resumed == 0  # due 1 s ago: not overdue yet

    await alive.advance(30)
    counts = await sweep_waits(
        alive.store, alive.resumer, [alive.engine], alive.clock, overdue_seconds=30
    )
    await alive.settle()
    assert counts.resumed == 1
    assert await alive.result(name) == {"napped": True}


async def test_a_dead_execution_is_handed_off_again_once_whatever_the_replicas() -> None:
    first = durable_rig()
    first.serve(one_child)
    name = await first.start("t.Child")
    record = await first.record(name)
    checkpoint = Checkpoint.of(record)
    handed = checkpoint.handed_to("projects/p/locations/l/workflows/w/executions/1")
    await first.store.update(dataclasses.replace(record, checkpoint=handed.encode()))
    second = durable_rig(first.clock, first.store.inner.data)  # type: ignore[attr-defined]
    second.serve(one_child)
    asked: list[str] = []

    async def failed(handle: str) -> str:
        asked.append(handle)
        return "FAILED"

    counts = await asyncio.gather(
        *(
            sweep_waits(
                rig.store,
                rig.resumer,
                [rig.engine],
                rig.clock,
                overdue_seconds=30,
                execution_state=failed,
            )
            for rig in (first, second)
        )
    )

    assert sum(c.handed_off_again for c in counts) == 1
    after = Checkpoint.of(await first.record(name))
    assert after.wait is not None and after.wait.id == checkpoint.seq + 1
    assert after.wait.retries == 1 and after.wait.children == checkpoint.wait.children  # type: ignore[union-attr]
    assert asked


async def test_children_done_long_ago_without_a_resume_are_resumed() -> None:
    rig = durable_rig()
    rig.serve(one_child)
    name = await rig.start("t.Child")
    child = rig.started[0][0]
    rig.resumer.waiter.forget(name)  # as if the execution that watched it was lost
    await rig.finish_child(child, response={"run_id": 3})
    assert not (await rig.record(name)).done

    async def active(handle: str) -> str:
        return "ACTIVE"

    await rig.advance(31)
    counts = await sweep_waits(
        rig.store,
        rig.resumer,
        [rig.engine],
        rig.clock,
        overdue_seconds=30,
        execution_state=active,
    )
    await rig.settle()

    assert counts.resumed == 1
    assert await rig.result(name) == {"run": {"run_id": 3}}
