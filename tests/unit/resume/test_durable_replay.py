"""The durable engine on the in-memory store and fake time: Start, replay, steps, children,
gather, drift, progress and metadata. Promises, timers, cancel and timeouts are in
test_durable_waits.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from durable_rig import OWNER, DurableRig, durable_rig

from lro_server import durable
from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.core.errors import Code
from lro_server.resume.durable_view import MAX_SHOWN_STEPS

RUN_NOW = "lro.databricks.v1.Jobs/RunNow"


@pytest.fixture
def rig() -> DurableRig:
    return durable_rig()


def metadata(record: Any) -> methods_pb2.MethodMetadata:
    found = methods_pb2.MethodMetadata()
    record.operation.metadata.Unpack(found)
    return found


async def test_start_answers_before_the_method_runs_then_it_runs_in_the_background(
    rig: DurableRig,
) -> None:
    ran: list[str] = []

    @durable.method("t.Hello")
    async def hello(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        ran.append(ctx.operation)
        return {"hello": request["who"], "n": 3}

    rig.serve(hello)
    operation = await rig.service.start(
        caller=OWNER,
        method="lro.durable.v1.Methods/Start",
        family="durable",
        payload='{"method":"t.Hello","input":{"who":"x"},"labels":{}}',
        timeout_seconds=60,
    )
    assert not operation.done and ran == []
    await rig.settle()
    assert ran == [operation.name]
    assert await rig.result(operation.name) == {"hello": "x", "n": 3}
    meta = metadata(await rig.record(operation.name))
    assert meta.method == "t.Hello" and meta.state == "SUCCEEDED" and meta.HasField("end_time")


async def test_steps_run_once_and_replays_return_their_recorded_results(rig: DurableRig) -> None:
    runs: list[str] = []

    def effect(label: str) -> dict[str, str]:
        runs.append(label)
        return {"label": label, "key": durable.step_key()}

    @durable.method("t.Steps")
    async def steps(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        first = await ctx.step("first", effect, "a")
        await ctx.sleep(10)
        second = await ctx.step("second", effect, "b")
        return {"first": first, "second": second}

    rig.serve(steps)
    name = await rig.start("t.Steps")
    assert runs == ["a"]
    checkpoint = await rig.waiting(name)
    assert checkpoint.wait is not None and checkpoint.wait.wake_at_us > 0

    await rig.advance(10)

    result = await rig.result(name)
    assert runs == ["a", "b"]  # the replay returned "first" from the journal
    op_id = name.split("/")[1]
    assert result["first"] == {"label": "a", "key": f"{op_id}/0"}
    assert result["second"]["key"] == f"{op_id}/2"
    fold = await rig.fold(name)
    assert [fold.slots[p].kind for p in sorted(fold.slots)] == ["STEP", "SLEEP", "STEP"]


async def test_an_async_step_runs_on_the_loop_and_a_sync_one_on_a_thread(rig: DurableRig) -> None:
    import threading

    main = threading.get_ident()
    seen: dict[str, bool] = {}

    async def on_loop() -> int:
        seen["async_on_loop"] = threading.get_ident() == main
        return 1

    def on_thread() -> int:
        seen["sync_on_thread"] = threading.get_ident() != main
        return 2

    @durable.method("t.Where")
    async def where(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"sum": await ctx.step("a", on_loop) + await ctx.step("b", on_thread)}

    rig.serve(where)
    name = await rig.start("t.Where")
    assert await rig.result(name) == {"sum": 3}
    assert seen == {"async_on_loop": True, "sync_on_thread": True}


async def test_a_call_starts_a_child_waits_and_returns_its_response(rig: DurableRig) -> None:
    @durable.method("t.Call")
    async def call(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        run = await ctx.call(RUN_NOW, {"job_id": request["job"]})
        return {"run": run}

    rig.serve(call)
    name = await rig.start("t.Call", {"job": 7})
    (child, request, request_id) = rig.started[0]
    assert request == {"job_id": 7}
    assert request_id == f"durable-{name.split('/')[1]}-0"
    checkpoint = await rig.waiting(name)
    assert checkpoint.wait is not None and checkpoint.wait.children == (child,)
    assert metadata(await rig.record(name)).waiting_on == [child]

    await rig.finish_child(child, response={"run_id": 5, "run_page_url": "https://x/5"})

    assert await rig.result(name) == {"run": {"run_id": 5, "run_page_url": "https://x/5"}}
    assert len(rig.started) == 1


async def test_gather_fans_out_in_one_suspension_and_raises_the_first_failure_last(
    rig: DurableRig,
) -> None:
    @durable.method("t.Fan")
    async def fan(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        try:
            await ctx.gather(
                ctx.call(RUN_NOW, {"job_id": 1}),
                ctx.call(RUN_NOW, {"job_id": 2}),
                ctx.call(RUN_NOW, {"job_id": 3}),
            )
        except durable.OperationFailed as failure:
            recovered = await ctx.call(RUN_NOW, {"job_id": 99})
            return {"code": failure.code, "failed": failure.operation, "then": recovered}
        return {"ok": True}

    rig.serve(fan)
    name = await rig.start("t.Fan")
    a, b, c = await rig.children()
    versions = (await rig.record(name)).version
    assert (await rig.waiting(name)).wait.children == tuple(sorted((a, b, c)))  # type: ignore[union-attr]

    await rig.finish_child(b, code=Code.NOT_FOUND, message="no job 2")
    await rig.finish_child(a)
    assert not (await rig.record(name)).done and len(rig.started) == 3  # c still runs
    await rig.finish_child(c, code=Code.INTERNAL)

    recovery = rig.started[3][0]
    await rig.finish_child(recovery, response={"fixed": True})
    assert await rig.result(name) == {
        "code": Code.NOT_FOUND,
        "failed": b,
        "then": {"fixed": True},
    }
    assert versions <= 3  # Start, the first activation's wait: one write for the fan-out


async def test_an_uncaught_child_failure_fails_the_method_with_its_code(rig: DurableRig) -> None:
    @durable.method("t.Uncaught")
    async def uncaught(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.call(RUN_NOW, {"job_id": 1})
        return {}

    rig.serve(uncaught)
    name = await rig.start("t.Uncaught")
    await rig.finish_child(rig.started[0][0], code=Code.PERMISSION_DENIED, message="no access")
    assert await rig.error(name) == (Code.PERMISSION_DENIED, "no access")


async def test_any_other_exception_is_unknown_with_its_type_and_message(rig: DurableRig) -> None:
    @durable.method("t.Raises")
    async def raises(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("boom at line 3")

    rig.serve(raises)
    name = await rig.start("t.Raises")
    assert await rig.error(name) == (Code.UNKNOWN, "ValueError: boom at line 3")


async def test_a_refused_child_is_an_operation_failed_the_method_may_catch(rig: DurableRig) -> None:
    @durable.method("t.Refused")
    async def refused(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("before", lambda: 1)
        try:
            await ctx.call("x.v1.Svc/Refuse", {"bad": True})
        except durable.OperationFailed as failure:
            return {"code": failure.code, "message": failure.message}
        return {}

    rig.serve(refused)
    name = await rig.start("t.Refused")
    result = await rig.result(name)
    assert result["code"] == Code.INVALID_ARGUMENT and "refuses" in result["message"]


async def test_a_step_failure_without_retry_is_step_failed_in_the_method(rig: DurableRig) -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise RuntimeError("smtp down")

    @durable.method("t.StepFails")
    async def step_fails(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        try:
            await ctx.step("email", flaky)
        except durable.StepFailed as failure:
            await ctx.sleep(1)  # the failure is replayed, not the step
            return {"caught": failure.message, "code": failure.code}
        return {}

    rig.serve(step_fails)
    name = await rig.start("t.StepFails")
    await rig.advance(1)
    assert await rig.result(name) == {"caught": "RuntimeError: smtp down", "code": Code.UNKNOWN}
    assert calls == [1]


async def test_retry_waits_durably_with_backoff_and_keeps_the_step_key(rig: DurableRig) -> None:
    keys: list[str] = []

    def third_time_lucky() -> str:
        keys.append(durable.step_key())
        if len(keys) < 3:
            raise ConnectionError(f"attempt {len(keys)}")
        return "sent"

    retry = durable.Retry(max_attempts=3, initial_backoff=timedelta(seconds=2))

    @durable.method("t.Retry")
    async def retried(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"sent": await ctx.step("send", third_time_lucky, retry=retry)}

    rig.serve(retried)
    name = await rig.start("t.Retry")
    assert len(keys) == 1
    await rig.advance(1.9)
    assert len(keys) == 1  # backoff 2 s: not yet
    await rig.advance(0.2)
    assert len(keys) == 2
    meta = metadata(await rig.record(name))
    assert meta.steps[0].attempts == 2 and meta.steps[0].state == methods_pb2.Step.WAITING
    await rig.advance(4.0)  # the second backoff doubles
    assert await rig.result(name) == {"sent": "sent"}
    assert len(set(keys)) == 1


async def test_retry_gives_up_after_max_attempts(rig: DurableRig) -> None:
    def never() -> None:
        raise OSError("still down")

    @durable.method("t.GiveUp")
    async def give_up(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("send", never, retry=durable.Retry(max_attempts=2))
        return {}

    rig.serve(give_up)
    name = await rig.start("t.GiveUp")
    await rig.advance(5)
    assert await rig.error(name) == (Code.UNKNOWN, "OSError: still down")
    fold = await rig.fold(name)
    assert fold.slots[0].attempts == 2 and fold.slots[0].done


async def test_a_different_call_at_a_recorded_position_fails_with_drift(rig: DurableRig) -> None:
    @durable.method("t.Drift")
    async def before(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.call(RUN_NOW, {"job_id": 1})
        return {}

    rig.serve(before)
    name = await rig.start("t.Drift")

    @durable.method("t.Drift")
    async def after(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.call(RUN_NOW, {"job_id": 2})
        return {}

    rig.serve(after)
    await rig.finish_child(rig.started[0][0])

    code, message = await rig.error(name)
    assert code == Code.FAILED_PRECONDITION
    assert "position 0" in message and RUN_NOW in message
    assert message.count("request") == 2  # both calls are named, the journal's and the new one
    assert len(rig.started) == 1


async def test_a_step_renamed_at_a_recorded_position_is_drift_too(rig: DurableRig) -> None:
    names = iter(["one", "two"])

    @durable.method("t.Rename")
    async def rename(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step(next(names), lambda: 1)
        await ctx.sleep(1)
        return {}

    rig.serve(rename)
    name = await rig.start("t.Rename")
    await rig.advance(1)
    code, message = await rig.error(name)
    assert code == Code.FAILED_PRECONDITION
    assert "step 'one'" in message and "step 'two'" in message


async def test_progress_is_shown_and_filterable_and_kept_across_replays(rig: DurableRig) -> None:
    @durable.method("t.Progress")
    async def progress(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        ctx.progress(state="TRAINING", message="epoch 1")
        await ctx.sleep(5)
        return {}

    rig.serve(progress)
    name = await rig.start("t.Progress")
    record = await rig.record(name)
    assert record.state == "TRAINING"
    meta = metadata(record)
    assert (meta.state, meta.message) == ("TRAINING", "epoch 1")
    assert dict(meta.labels) == {"team": "ml"}
    await rig.advance(5)
    assert (await rig.record(name)).state == "SUCCEEDED"


async def test_metadata_keeps_the_last_steps_and_every_unfinished_one(rig: DurableRig) -> None:
    total = MAX_SHOWN_STEPS + 30

    @durable.method("t.Many")
    async def many(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        promise = ctx.promise("late")
        for index in range(total):
            await ctx.step(f"s{index}", lambda i=index: i)
        await promise
        return {}

    rig.serve(many)
    name = await rig.start("t.Many")
    shown = metadata(await rig.record(name)).steps
    assert len(shown) == MAX_SHOWN_STEPS + 1
    assert shown[0].kind == methods_pb2.Step.PROMISE and shown[0].state == methods_pb2.Step.WAITING
    assert shown[-1].name == f"s{total - 1}"
    assert len((await rig.fold(name)).slots) == total + 1


async def test_a_method_returning_a_non_dict_fails(rig: DurableRig) -> None:
    @durable.method("t.List")
    async def returns_list(ctx: durable.Context, request: dict[str, Any]) -> Any:
        return [1, 2]

    rig.serve(returns_list)
    name = await rig.start("t.List")
    code, message = await rig.error(name)
    assert code == Code.UNKNOWN and "not a dict" in message


async def test_while_running_the_metadata_follows_steps_at_most_once_a_second(
    rig: DurableRig,
) -> None:
    release = asyncio.Event()

    async def slow() -> str:
        await rig.clock.sleep(1.5)
        return "slow"

    async def quick() -> str:
        return "quick"

    async def held() -> str:
        await release.wait()
        return "held"

    @durable.method("t.Running")
    async def running(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("slow", slow)
        await ctx.step("quick", quick)
        await ctx.step("held", held)
        return {}

    rig.serve(running)
    operation = await rig.service.start(
        caller=OWNER,
        method="lro.durable.v1.Methods/Start",
        family="durable",
        payload='{"method":"t.Running","input":{},"labels":{}}',
        timeout_seconds=60,
    )
    name = str(operation.name)
    await rig.clock.advance(0)
    await rig.clock.advance(1.5)

    shown = metadata(await rig.record(name)).steps
    # The write before "quick" came 1.5 s after the last rewrite: "slow" shows as done; the
    # write before "held" came at once after it and kept that metadata.
    assert [(s.name, s.state) for s in shown] == [("slow", methods_pb2.Step.SUCCEEDED)]
    assert (await rig.record(name)).state == "RUNNING"
    release.set()
    await rig.settle()
    assert [s.name for s in metadata(await rig.record(name)).steps] == ["slow", "quick", "held"]
