"""Durable methods the durable benchmark serves (``--methods benchmarks.durable_workloads``).

The same shapes as benchmarks/dbos_workloads.py: steps in a row, durable sleeps, a promise
resolved from outside, a child operation awaited, and 20 steps of 50 ms for the kill -9
scenario (each step appends ``<step key> <phase> <time>`` to the file in ``BENCH_EFFECTS``
when it begins, then works for 50 ms).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from lro_server import durable

EFFECTS = Path(os.environ.get("BENCH_EFFECTS", "/dev/null"))
PHASE = os.environ.get("BENCH_PHASE", "")


async def tiny(index: int) -> int:
    return index


def tiny_sync(index: int) -> int:
    return index


@durable.method("bench.Steps")
async def steps(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    step = tiny_sync if request.get("sync") else tiny
    total = 0
    for index in range(request["steps"]):
        total += await ctx.step(f"s{index}", step, index)
    return {"total": total}


@durable.method("bench.Sleep")
async def sleep(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.sleep(request["seconds"])
    return {"woke": await ctx.step("now", time.time)}


@durable.method("bench.Promise")
async def promise(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.promise("go")
    return {"resumed": await ctx.step("now", time.time)}


@durable.method("bench.Child")
async def child(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    run = await ctx.call("lro.databricks.v1.Jobs/RunNow", {"job_id": request["job_id"]})
    return {"resumed": await ctx.step("now", time.time), "run": run["run_id"]}


async def effect(index: int) -> int:
    with EFFECTS.open("a") as log:  # noqa: ASYNC230 - one short append, as a real effect
        log.write(f"{durable.step_key()} {PHASE} {time.time():.6f}\n")
    await asyncio.sleep(0.05)  # the rest of the step's work
    return index


@durable.method("bench.Effects")
async def effects(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    total = 0
    for index in range(20):
        total += await ctx.step(f"e{index}", effect, index)
    return {"total": total}
