"""Durable methods the end-to-end tests serve (loaded with --methods / LRO_METHODS too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lro_server import durable

RUN_NOW = "lro.databricks.v1.Jobs/RunNow"
#: Side effects of steps run in this process (servers in threads share it).
EFFECTS: list[tuple[str, Any]] = []
#: Which job test.Drifting calls: a test changes it to make the code drift.
DRIFT = {"index": 0}


def send_email(owner: str, published: Any) -> dict[str, str]:
    """A step's side effect: recorded, with the step key (what a mail API would dedupe)."""
    EFFECTS.append(("email", {"to": owner, "published": published, "key": durable.step_key()}))
    return {"to": owner}


def append_line(path: str, line: str) -> str:
    """A side effect visible across processes: a line appended to a file."""
    with Path(path).open("a") as log:
        log.write(line + "\n")
    return line


@durable.method("test.FanOut")
async def fan_out(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    first, second = await ctx.gather(
        ctx.call(RUN_NOW, {"job_id": request["a"]}),
        ctx.call(RUN_NOW, {"jobId": request["b"]}),  # lowerCamelCase is accepted too
    )
    return {
        "runs": [first["run_id"], second["run_id"]],
        "urls": [first["run_page_url"], second["run_page_url"]],
    }


@durable.method("test.Recover")
async def recover(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    try:
        await ctx.call(RUN_NOW, {"job_id": request["bad"]})
    except durable.OperationFailed as failure:
        fixed = await ctx.call(RUN_NOW, {"job_id": request["good"]})
        return {
            "failed_code": failure.code,
            "failed_message": failure.message,
            "failed": failure.operation,
            "recovered": fixed["run_id"],
        }
    return {"recovered": None}


@durable.method("test.Uncaught")
async def uncaught(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.call(RUN_NOW, {"job_id": request["bad"]})
    return {}


@durable.method("test.Notebook")
async def notebook(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    done = ctx.promise("published")
    run = await ctx.call(
        RUN_NOW, {"job_id": request["job"], "notebook_params": {"promise_id": done.id}}
    )
    published = await done
    await ctx.step("email", send_email, request["owner"], published)
    return {"run": run["run_page_url"], "published": published}


@durable.method("test.Sleeper")
async def sleeper(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.step("before", append_line, request["log"], "before")
    await ctx.sleep(request["seconds"])
    await ctx.step("after", append_line, request["log"], "after")
    return {"slept": request["seconds"]}


@durable.method("test.Drifting")
async def drifting(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    await ctx.call(RUN_NOW, {"job_id": request["jobs"][DRIFT["index"]]})
    await ctx.sleep(3600)
    return {}


@durable.method("test.Hold")
async def hold(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    first = ctx.start(RUN_NOW, {"job_id": request["job"]})
    await ctx.call(RUN_NOW, {"job_id": request["job"]})
    await first
    return {}
