"""A step that runs long keeps its operation alive (heartbeat writes every
HEARTBEAT_SECONDS), so no other replica starts it again; quick steps leave no timer."""

from __future__ import annotations

import asyncio
from typing import Any

from durable_rig import OWNER, durable_rig

from lro_server import durable
from lro_server.resume.durable_engine import START_METHOD
from lro_server.resume.durable_steps import HEARTBEAT_SECONDS


async def test_a_long_step_writes_heartbeats_until_it_ends_and_quick_ones_leave_no_timer() -> None:
    rig = durable_rig()
    release = asyncio.Event()
    began = asyncio.Event()

    async def quick(value: int) -> int:
        return value

    async def long_one() -> str:
        began.set()
        await release.wait()
        return "done"

    @durable.method("t.Quick")
    async def quick_method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"sum": sum([await ctx.step(f"q{index}", quick, index) for index in range(3)])}

    @durable.method("t.Long")
    async def long_method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        for index in range(3):
            await ctx.step(f"quick{index}", quick, index)
        return {"long": await ctx.step("long", long_one)}

    rig.serve(quick_method, long_method)
    quick_name = await rig.start("t.Quick")
    assert await rig.result(quick_name) == {"sum": 3}
    assert rig.clock.pending == 0  # its steps' watch timer went with its activation

    operation = await rig.service.start(
        caller=OWNER,
        method=START_METHOD,
        family="durable",
        payload='{"method":"t.Long","input":{},"labels":{}}',
        timeout_seconds=3600,
    )
    name = str(operation.name)
    await rig.clock.advance(0)
    await asyncio.wait_for(began.wait(), 10)
    before = (await rig.record(name)).version

    # Quick steps first, then the long one: its heartbeat starts after HEARTBEAT_SECONDS
    # of it and writes every HEARTBEAT_SECONDS after that.
    await rig.clock.advance(HEARTBEAT_SECONDS * 3 + 1)
    for _ in range(100):
        await asyncio.sleep(0)
    during = (await rig.record(name)).version
    assert during - before == 2

    release.set()
    await rig.settle()
    assert await rig.result(name) == {"long": "done"}
    assert rig.clock.pending == 0  # no heartbeat, no watch timer left behind
    await rig.advance(HEARTBEAT_SECONDS * 3)
    assert (await rig.record(name)).version == during + 1  # the final write, no more
