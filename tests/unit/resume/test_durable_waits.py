"""The durable engine's waits on fake time: promises, timers, gather of mixed waits,
cancel and timeout reaching children, duplicate and concurrent resumes, and a restart
(recovery) in the middle."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from durable_rig import OWNER, DurableRig, durable_rig

from lro_server import durable
from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.core.errors import Code, FailedPrecondition, NotFound
from lro_server.core.principal import INTERNAL
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.durable_journal import parse_promise_id
from lro_server.resume.recovery import recover_waits

RUN_NOW = "lro.databricks.v1.Jobs/RunNow"
State = methods_pb2.Promise.State


@pytest.fixture
def rig() -> DurableRig:
    return durable_rig()


def promise_method(ids: list[str]) -> Any:
    @durable.method("t.Promise")
    async def waits_for_promise(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        done = ctx.promise("published")
        ids.append(done.id)
        await ctx.step("hand out", lambda: None)
        try:
            value = await done
        except durable.OperationFailed as failure:
            return {"rejected": failure.message, "code": failure.code, "id": failure.operation}
        return {"value": value}

    return waits_for_promise


async def test_a_promise_resolved_while_awaited_resumes_the_method_at_once(rig: DurableRig) -> None:
    ids: list[str] = []
    rig.serve(promise_method(ids))
    name = await rig.start("t.Promise")
    checkpoint = await rig.waiting(name)
    assert checkpoint.wait is not None and checkpoint.wait.promises == (ids[0],)
    parent, _, secret = parse_promise_id(ids[0])
    assert parent == name and len(secret) == 32

    answer = await rig.engine.resolve_promise(ids[-1], {"table": "gold", "rows": 3}, None)
    await rig.settle()

    assert answer.state == State.RESOLVED and answer.operation == name
    assert await rig.result(name) == {"value": {"table": "gold", "rows": 3}}


async def test_a_promise_resolved_before_it_is_awaited_is_not_waited_for(rig: DurableRig) -> None:
    ids: list[str] = []

    @durable.method("t.Early")
    async def early(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        done = ctx.promise("p")
        ids.append(done.id)
        await ctx.sleep(60)
        return {"value": await done}

    rig.serve(early)
    name = await rig.start("t.Early")
    await rig.engine.resolve_promise(ids[-1], "early", None)
    await rig.settle()
    assert not (await rig.record(name)).done  # still sleeping

    await rig.advance(60)

    assert await rig.result(name) == {"value": "early"}


async def test_a_rejected_promise_raises_operation_failed(rig: DurableRig) -> None:
    ids: list[str] = []
    rig.serve(promise_method(ids))
    name = await rig.start("t.Promise")

    answer = await rig.engine.resolve_promise(ids[-1], None, (Code.ABORTED, "notebook failed"))
    await rig.settle()

    assert answer.state == State.REJECTED and answer.error.code == Code.ABORTED
    assert await rig.result(name) == {
        "rejected": "notebook failed",
        "code": Code.ABORTED,
        "id": ids[-1],
    }


async def test_a_second_answer_returns_the_first_unchanged(rig: DurableRig) -> None:
    ids: list[str] = []
    rig.serve(promise_method(ids))
    name = await rig.start("t.Promise")
    await rig.engine.resolve_promise(ids[-1], 1, None)
    await rig.settle()
    events = len(await rig.store.journal(name))

    again = await rig.engine.resolve_promise(ids[-1], 2, None)

    assert again.state == State.RESOLVED and again.value.number_value == 1
    assert len(await rig.store.journal(name)) == events
    assert await rig.result(name) == {"value": 1}


async def test_wrong_or_malformed_promise_ids_are_not_found_alike(rig: DurableRig) -> None:
    ids: list[str] = []
    rig.serve(promise_method(ids))
    name = await rig.start("t.Promise")
    parent_id = name.split("/")[1]
    real = ids[-1]
    wrong = [
        real[:-1] + ("0" if real[-1] != "0" else "1"),  # wrong secret
        f"{parent_id}.7.{real.rsplit('.', 1)[1]}",  # no promise at that position
        "00000000-0000-4000-8000-000000000000.0." + "a" * 32,  # no such operation
        "nonsense",
        f"{parent_id}.0.",
    ]
    messages = set()
    for promise in wrong:
        with pytest.raises(NotFound) as caught:
            await rig.engine.resolve_promise(promise, 1, None)
        messages.add(caught.value.message)
    assert messages == {"promise not found"}
    assert not (await rig.record(name)).done


async def test_a_promise_of_a_finished_operation_cannot_be_resolved(rig: DurableRig) -> None:
    ids: list[str] = []

    @durable.method("t.Unused")
    async def unused(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        ids.append(ctx.promise("never awaited").id)
        return {}

    rig.serve(unused)
    name = await rig.start("t.Unused")
    assert (await rig.record(name)).done
    with pytest.raises(FailedPrecondition):
        await rig.engine.resolve_promise(ids[-1], 1, None)


async def test_a_durable_sleep_holds_nothing_and_wakes_at_its_time(rig: DurableRig) -> None:
    @durable.method("t.Sleep")
    async def sleeps(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.sleep(timedelta(minutes=5))
        return {"woke": True}

    rig.serve(sleeps)
    name = await rig.start("t.Sleep")
    meta = methods_pb2.MethodMetadata()
    (await rig.record(name)).operation.metadata.Unpack(meta)
    assert len(meta.waiting_on) == 1 and meta.waiting_on[0].endswith("Z")
    assert rig.resumer.busy == 0

    await rig.advance(299)
    assert not (await rig.record(name)).done
    await rig.advance(1)
    assert await rig.result(name) == {"woke": True}


async def test_gather_of_a_child_a_promise_and_a_timer_waits_for_all(rig: DurableRig) -> None:
    ids: list[str] = []

    @durable.method("t.Mixed")
    async def mixed(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        promise = ctx.promise("p")
        ids.append(promise.id)
        run, value, _ = await ctx.gather(ctx.call(RUN_NOW, {"job_id": 1}), promise, ctx.sleep(30))
        return {"run": run, "value": value}

    rig.serve(mixed)
    name = await rig.start("t.Mixed")
    child = rig.started[0][0]
    await rig.finish_child(child, response={"run_id": 9})
    await rig.engine.resolve_promise(ids[-1], "v", None)
    await rig.settle()
    assert not (await rig.record(name)).done  # the timer is not due

    await rig.advance(30)

    assert await rig.result(name) == {"run": {"run_id": 9}, "value": "v"}


async def test_cancel_while_sleeping_ends_the_method_cancelled_at_once(rig: DurableRig) -> None:
    @durable.method("t.LongSleep")
    async def long_sleep(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.sleep(3600)
        return {}

    rig.serve(long_sleep)
    name = await rig.start("t.LongSleep")

    await rig.service.cancel(name, INTERNAL)
    await rig.settle()

    code, _ = await rig.error(name)
    assert code == Code.CANCELLED


async def test_cancel_cancels_running_children_first_then_the_method(rig: DurableRig) -> None:
    @durable.method("t.CancelChildren")
    async def two(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        background = ctx.start(RUN_NOW, {"job_id": 1})
        await ctx.call(RUN_NOW, {"job_id": 2})
        await background
        return {}

    rig.serve(two)
    name = await rig.start("t.CancelChildren")
    background, awaited = (s[0] for s in rig.started)

    await rig.service.cancel(name, INTERNAL)
    await rig.settle()
    assert rig.cancelled == [awaited] and not (await rig.record(name)).done

    await rig.finish_child(awaited, code=Code.CANCELLED)

    assert (await rig.error(name))[0] == Code.CANCELLED
    assert rig.cancelled == [awaited, background]


async def test_the_timeout_fails_the_method_and_cancels_running_children(rig: DurableRig) -> None:
    @durable.method("t.Slow")
    async def slow(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.call(RUN_NOW, {"job_id": 1})
        return {}

    rig.serve(slow)
    name = await rig.start("t.Slow", timeout=120)
    child = rig.started[0][0]

    await rig.advance(120)

    code, message = await rig.error(name)
    assert code == Code.DEADLINE_EXCEEDED and "120" in message
    assert rig.cancelled == [child]


async def test_duplicate_and_concurrent_resumes_change_nothing(rig: DurableRig) -> None:
    runs: list[int] = []

    async def effect() -> int:
        runs.append(1)
        await asyncio.sleep(0)
        return len(runs)

    @durable.method("t.Dup")
    async def dup(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.sleep(10)
        value = await ctx.step("effect", effect)
        await ctx.sleep(10)
        return {"value": value}

    rig.serve(dup)
    name = await rig.start("t.Dup")
    wait_id = (await rig.waiting(name)).wait.id  # type: ignore[union-attr]
    rig.clock.step(10)  # due, but nothing ran yet
    await asyncio.gather(*(rig.resume(name, wait_id=wait_id) for _ in range(3)))
    await rig.settle()
    after = await rig.record(name)

    again = await rig.resume(name, wait_id=wait_id)  # a late duplicate

    assert runs == [1]
    assert again == after.operation and await rig.record(name) == after
    await rig.advance(10)
    assert await rig.result(name) == {"value": 1}


async def test_a_restart_resumes_every_wait_and_runs_no_recorded_step_again(
    rig: DurableRig,
) -> None:
    runs: list[str] = []

    @durable.method("t.Restart")
    async def restart(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        await ctx.step("once", lambda: runs.append("once"))
        await ctx.sleep(30)
        return {"runs": len(runs)}

    rig.serve(restart)
    names = [await rig.start("t.Restart") for _ in range(3)]
    assert runs == ["once"] * 3
    # A new process over the same data: nothing in memory, only the checkpoints.
    other = durable_rig(rig.clock, rig.store.inner.data)  # type: ignore[attr-defined]
    other.serve(restart)
    resumer = other.resumer

    found = await recover_waits(
        other.store, [other.engine], resumer.waiter, lambda r: resumer.spawn(resumer.start(r))
    )

    assert found == 3
    await rig.advance(30)
    await other.settle()
    for name in names:
        assert Checkpoint.of(await other.record(name)).wait is None
        assert await other.result(name) == {"runs": 3}
    assert runs == ["once"] * 3


async def test_a_method_running_when_its_process_died_is_replayed_at_recovery(
    rig: DurableRig,
) -> None:
    runs: list[str] = []
    blocked = asyncio.Event()

    async def slow(label: str) -> str:
        runs.append(label)
        if label == "second" and len(runs) == 2:
            await blocked.wait()  # the first process dies in the middle of this step
        return label

    @durable.method("t.Running")
    async def running(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        first = await ctx.step("first", slow, "first")
        second = await ctx.step("second", slow, "second")
        return {"steps": [first, second]}

    rig.serve(running)
    operation = await rig.service.start(
        caller=OWNER,
        method="lro.durable.v1.Methods/Start",
        family="durable",
        payload='{"method":"t.Running","input":{},"labels":{}}',
        timeout_seconds=3600,
    )
    name = str(operation.name)
    await rig.clock.advance(0)
    for _ in range(100):
        if len(runs) == 2:
            break
        await asyncio.sleep(0)
    assert runs == ["first", "second"]
    await rig.resumer.stop()  # the process dies: its activation is gone, no wait is stored
    assert Checkpoint.of(await rig.record(name)).wait is None

    other = durable_rig(rig.clock, rig.store.inner.data)  # type: ignore[attr-defined]
    other.serve(running)
    resumer = other.resumer
    await recover_waits(
        other.store, [other.engine], resumer.waiter, lambda r: resumer.spawn(resumer.start(r))
    )
    await other.settle()

    assert await other.result(name) == {"steps": ["first", "second"]}
    assert runs == ["first", "second", "second"]  # the unrecorded step ran again, the first not
