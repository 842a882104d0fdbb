"""A step's result, a method's result or a child's response too large to store fails the
step, the method or the parent's call with a message naming the limit; the operation ends
instead of its commits failing again and again."""

from __future__ import annotations

from typing import Any

from durable_rig import durable_rig

from lro_server import durable
from lro_server.core.errors import Code
from lro_server.resume.durable_engine import MAX_RESULT_BYTES
from lro_server.resume.durable_journal import MAX_OUTCOME_BYTES


async def test_a_step_result_over_the_limit_fails_the_step_and_the_method_can_catch_it() -> None:
    rig = durable_rig()
    ran: list[str] = []

    async def big() -> str:
        ran.append("big")
        return "é" * (MAX_OUTCOME_BYTES // 2 + 1)  # two bytes each in UTF-8

    async def small() -> str:
        ran.append("small")
        return "ok"

    @durable.method("t.BigStep")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("small", small)
        try:
            await ctx.step("big", big)
        except durable.OperationFailed as failure:
            return {"caught": failure.message, "after": await ctx.step("after", small)}
        return {}

    rig.serve(method)
    name = await rig.start("t.BigStep")

    result = await rig.result(name)
    assert "over the limit of" in result["caught"] and f"{MAX_OUTCOME_BYTES:,}" in result["caught"]
    assert result["after"] == "ok" and ran == ["small", "big", "small"]


async def test_a_step_result_of_the_limit_is_recorded() -> None:
    rig = durable_rig()

    async def at_limit() -> str:
        return "x" * (MAX_OUTCOME_BYTES - 2)  # two quotes make it the limit exactly

    @durable.method("t.AtLimit")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"size": len(await ctx.step("at", at_limit))}

    rig.serve(method)
    name = await rig.start("t.AtLimit")

    assert await rig.result(name) == {"size": MAX_OUTCOME_BYTES - 2}


async def test_a_method_result_over_the_limit_fails_the_method() -> None:
    rig = durable_rig()

    @durable.method("t.BigResult")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"data": "x" * (MAX_RESULT_BYTES + 1)}

    rig.serve(method)
    name = await rig.start("t.BigResult")

    code, message = await rig.error(name)
    assert code == Code.UNKNOWN
    assert "over the limit of" in message and f"{MAX_RESULT_BYTES:,}" in message


async def test_a_child_response_over_the_limit_reaches_the_parent_as_a_failure() -> None:
    rig = durable_rig()

    @durable.method("t.BigChild")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        try:
            await ctx.call("fake.v1.Svc/Big", {})
        except durable.OperationFailed as failure:
            return {"code": failure.code, "message": failure.message, "child": failure.operation}
        return {}

    rig.serve(method)
    name = await rig.start("t.BigChild")
    (child,) = await rig.children()

    await rig.finish_child(child, response={"data": "x" * (MAX_OUTCOME_BYTES + 1)})

    result = await rig.result(name)
    assert result["code"] == Code.FAILED_PRECONDITION and result["child"] == child
    assert f"{MAX_OUTCOME_BYTES:,}" in result["message"]
    assert (await rig.record(child)).done  # the response stays readable on the child
