"""TimedWaiter on fake time: a timer that fires before the wall clock reached its time
(loop timers may fire early; the wall clock drifts from the loop's) waits for the rest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable_rig import durable_rig

from lro_server import durable


@durable.method("t.Drift")
async def nap(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.sleep(10)
    return {}


async def test_a_timer_firing_before_its_wall_clock_time_waits_for_the_rest() -> None:
    rig = durable_rig()
    rig.serve(nap)
    name = await rig.start("t.Drift")
    rig.clock.set(rig.clock.now() - timedelta(seconds=3))  # the wall clock falls behind

    await rig.advance(10)  # the loop's timer fires: wall time is 3 s short of the wake-up
    assert not (await rig.record(name)).done
    await rig.advance(3.1)

    assert (await rig.record(name)).done
