"""Quick steps in a row only append to the journal (the record is not written), and every
change of the record in between (a cancel, a resolved promise, another activation's
claim, the metadata falling due) makes the next commit a full write that sees it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from durable_rig import durable_rig
from engine_fakes import MeddlingStore

from lro_server import durable
from lro_server.core.errors import Code
from lro_server.core.principal import INTERNAL
from lro_server.core.record import OperationRecord
from lro_server.core.store import JournalEvent, OperationStore
from lro_server.resume import durable_journal as journal
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.durable_commit import RUNNING_METADATA_SECONDS


def _meddling() -> tuple[Any, list[MeddlingStore]]:
    stores: list[MeddlingStore] = []

    def wrap(inner: OperationStore) -> OperationStore:
        stores.append(MeddlingStore(inner))
        return stores[-1]  # type: ignore[return-value]

    return wrap, stores


async def test_quick_steps_append_without_writing_the_record() -> None:
    wrap, stores = _meddling()
    rig = durable_rig(wrap=wrap)
    names: list[str] = []
    versions: list[int] = []

    async def version_now() -> int:
        versions.append((await rig.record(names[0])).version)
        return len(versions)

    @durable.method("t.Appends")
    async def appends(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"n": [await ctx.step(f"s{index}", version_now) for index in range(5)]}

    rig.serve(appends)
    names.append(await rig.start_only("t.Appends"))
    await rig.settle()

    assert await rig.result(names[0]) == {"n": [1, 2, 3, 4, 5]}
    # The claim before the first step wrote the record; the next four commits appended.
    assert len(set(versions)) == 1 and stores[0].appends == 4
    events = await rig.store.journal(names[0])
    assert [event.seq for event in events] == [1, 2, 3, 4, 5]
    assert [json.loads(event.data)["kind"] for event in events] == [journal.STEP_DONE] * 5
    record = await rig.record(names[0])
    assert Checkpoint.of(record).state["events"] == 5  # the final write counts them all


async def test_a_cancel_between_quick_steps_stops_the_method_at_its_next_commit() -> None:
    rig = durable_rig()
    names: list[str] = []
    effects: list[str] = []

    async def effect(label: str) -> str:
        effects.append(label)
        if label == "s1":
            await rig.service.cancel(names[0], INTERNAL)
        return label

    @durable.method("t.CancelAppends")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"done": [await ctx.step(f"s{index}", effect, f"s{index}") for index in range(4)]}

    rig.serve(method)
    names.append(await rig.start_only("t.CancelAppends"))
    await rig.settle()

    assert (await rig.error(names[0]))[0] == Code.CANCELLED
    assert effects == ["s0", "s1"]
    steps = [json.loads(e.data)["name"] for e in await rig.store.journal(names[0])]
    assert steps == ["s0", "s1"]  # s1's result was recorded by the full write that stopped


async def test_a_promise_resolved_between_quick_steps_lands_after_their_appends() -> None:
    rig = durable_rig()
    ids: list[str] = []

    async def resolve_it() -> str:
        answer = await rig.engine.resolve_promise(ids[0], {"ok": 1}, None)
        return str(answer.state)

    async def quick(value: int) -> int:
        return value

    @durable.method("t.PromiseAppends")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        promise = ctx.promise("p")
        ids.append(promise.id)
        await ctx.step("a", quick, 1)
        await ctx.step("b", quick, 2)
        resolved = await ctx.step("resolve", resolve_it)
        await ctx.step("c", quick, 3)
        return {"value": await promise, "resolved": resolved}

    rig.serve(method)
    name = await rig.start_only("t.PromiseAppends")
    await rig.settle()

    assert (await rig.result(name))["value"] == {"ok": 1}
    events = await rig.store.journal(name)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    kinds = [json.loads(event.data)["kind"] for event in events]
    assert kinds.count(journal.PROMISE_RESOLVED) == 1
    # Appended after the events the method had appended (its seq came after them).
    assert kinds.index(journal.PROMISE_RESOLVED) > kinds.index(journal.STEP_DONE)


async def test_an_activation_overtaken_between_quick_steps_stops_at_its_next_append() -> None:
    wrap, stores = _meddling()
    rig = durable_rig(wrap=wrap)
    names: list[str] = []
    effects: list[str] = []

    async def overtake(record: OperationRecord) -> None:
        # Another activation claims the operation: the next checkpoint seq, written.
        stored = await stores[0].inner.get(record.name)
        checkpoint = Checkpoint.of(stored)
        theirs = Checkpoint(checkpoint.method, checkpoint.seq + 1, None, checkpoint.state)
        await stores[0].inner.update(
            OperationRecord(**{**_fields(stored), "checkpoint": theirs.encode()})
        )

    def effect(label: str) -> str:
        effects.append(label)
        if label == "s1":
            stores[0].before_update(names[0], overtake)  # before the append of s1's result
        return label

    @durable.method("t.Overtaken")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"done": [await ctx.step(f"s{index}", effect, f"s{index}") for index in range(4)]}

    rig.serve(method)
    names.append(await rig.start_only("t.Overtaken"))
    await rig.settle()

    # s1's append met the other activation's version; its full write saw the other seq.
    assert effects == ["s0", "s1"]
    steps = [json.loads(e.data)["name"] for e in await rig.store.journal(names[0])]
    assert steps == ["s0"]
    assert not (await rig.record(names[0])).done


async def test_a_claim_folds_in_what_the_previous_owner_appended_after_the_replay_read() -> None:
    wrap, stores = _meddling()
    rig = durable_rig(wrap=wrap)
    names: list[str] = []
    effects: list[str] = []

    def effect(label: str) -> str:
        effects.append(label)
        return label

    async def previous_owner_appends(record: OperationRecord) -> None:
        # The activation that owned the record before is still alive: it appends step b's
        # result at the stored version after this activation's replay read the journal.
        await _append_step(stores[0].inner, record.name, 2, "b", "theirs")

    @durable.method("t.Claimed")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        a = await ctx.step("a", effect, "a")
        await ctx.sleep(timedelta(seconds=10))
        b = await ctx.step("b", effect, "b")
        c = await ctx.step("c", effect, "c")
        return {"steps": [a, b, c]}

    rig.serve(method)
    name = await rig.start("t.Claimed")
    names.append(name)
    assert (await rig.waiting(name)).wait is not None and effects == ["a"]

    stores[0].before_update(name, previous_owner_appends)  # before the resumed claim
    await rig.advance(11)

    assert await rig.result(name) == {"steps": ["a", "theirs", "c"]}
    assert effects == ["a", "c"]  # b was recorded by the other activation: not run again
    events = await rig.store.journal(name)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))


async def test_the_metadata_falling_due_makes_a_commit_a_full_write() -> None:
    rig = durable_rig()
    names: list[str] = []
    versions: list[int] = []

    async def version_now(wait: float) -> int:
        versions.append((await rig.record(names[0])).version)
        await rig.clock.advance(wait)
        return len(versions)

    @durable.method("t.Due")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        for index, wait in enumerate([0, 0, RUNNING_METADATA_SECONDS + 0.5, 0, 0]):
            await ctx.step(f"s{index}", version_now, wait)
        return {}

    rig.serve(method)
    names.append(await rig.start_only("t.Due"))
    await rig.settle()

    assert await rig.result(names[0]) == {}
    # s0-s2 appended; s2 took longer than the metadata may stay: s3's commit wrote it.
    assert versions[:3] == [versions[0]] * 3 and versions[3] == versions[0] + 1
    assert versions[4] == versions[3]


def _fields(record: OperationRecord) -> dict[str, Any]:
    return {field: getattr(record, field) for field in record.__dataclass_fields__}


async def test_a_promise_whose_seq_an_append_took_meanwhile_goes_after_it() -> None:
    wrap, stores = _meddling()
    rig = durable_rig(wrap=wrap)
    ids: list[str] = []

    async def quick(value: str) -> str:
        return value

    async def appended_meanwhile(record: OperationRecord) -> None:
        # The method's own append lands between the resolve's journal read and its write.
        await _append_step(stores[0].inner, record.name, 3, "c", "appended")

    @durable.method("t.Raced")
    async def method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
        promise = ctx.promise("p")
        ids.append(promise.id)
        a = await ctx.step("a", quick, "a")
        b = await ctx.step("b", quick, "b")
        value = await promise
        c = await ctx.step("c", quick, "c")
        return {"steps": [a, b, c], "value": value}

    rig.serve(method)
    name = await rig.start("t.Raced")
    await rig.waiting(name)
    head = len(await rig.store.journal(name))

    stores[0].before_update(name, appended_meanwhile)
    await rig.engine.resolve_promise(ids[0], 7, None)
    await rig.settle()

    assert await rig.result(name) == {"steps": ["a", "b", "appended"], "value": 7}
    events = await rig.store.journal(name)
    assert json.loads(events[head].data)["kind"] == journal.STEP_DONE
    assert json.loads(events[head + 1].data)["kind"] == journal.PROMISE_RESOLVED


async def _append_step(
    store: OperationStore, name: str, position: int, step: str, result: Any
) -> None:
    """Append a step's result at the journal's head, as another activation would."""
    stored = await store.get(name)
    head = len(await store.journal(name))
    event = {"kind": journal.STEP_DONE, "pos": position, "name": step, "result": result}
    await store.append(stored, [JournalEvent(head + 1, journal.encode(event))])
