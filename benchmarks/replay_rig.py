"""CPU of replaying a long journal: the durable engine in-process on a SQLite store.

A method of N steps then a promise is run once (N steps recorded), then resumed again
several times with nothing new: each resume reads the journal, folds it, replays the
function through its N recorded steps and suspends on the promise again.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from typing import Any

from lro_server import durable
from lro_server.core.observed import ObservedStore
from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal
from lro_server.core.runners import RunnerRouter
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.durable_engine import START_METHOD, DurableEngine
from lro_server.resume.durable_payload import FAMILY, Payload
from lro_server.resume.engine import Resumer
from lro_server.resume.method import Resumption
from lro_server.storage.sqlite import SqliteStore


async def _step(index: int) -> int:
    return index


@durable.method("bench.Long")
async def long_method(ctx: durable.Context, request: dict[str, Any]) -> dict[str, Any]:
    for index in range(request["steps"]):
        await ctx.step(f"s{index}", _step, index)
    await ctx.promise("end")
    return {}


class _Nowhere:
    kind = "none"

    async def hand_off(self, ticket: Any) -> str:
        return ""

    async def restore(self, ticket: Any) -> None:
        return None

    def forget(self, parent: str) -> None:
        return None


async def replay_cpu_ms(steps: int, repeats: int = 5) -> float:
    """Median CPU milliseconds of one replay of a ``steps``-step journal."""
    with tempfile.TemporaryDirectory() as directory:
        store = ObservedStore(SqliteStore(f"{directory}/replay.db"))
        waiting = asyncio.Event()  # set once the method waits on its promise

        def changed(name: str, record: Any) -> None:
            if record is not None and record.checkpoint and Checkpoint.of(record).wait:
                waiting.set()

        store.add_listener(changed)
        marked = long_method.__lro_durable_method__  # type: ignore[attr-defined]

        async def no_children(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no children here")

        engine = DurableEngine(store, {marked.name: marked}, no_children)
        resumer = Resumer(store, [engine])

        async def cancel(name: str) -> None:
            return None

        resumer.bind(_Nowhere(), cancel)

        class _Runner:
            def prepare(self, record: Any) -> Any:
                return record

            async def start(self, record: Any) -> Any:
                return record

            async def request_cancel(self, record: Any) -> None:
                return None

        service = OperationsService(store, RunnerRouter(_Runner(), {FAMILY: resumer}))
        payload = Payload(marked.name, {"steps": steps})
        operation = await service.start(
            caller=Principal(subject="bench"),
            method=START_METHOD,
            family=FAMILY,
            payload=payload.encode(),
            timeout_seconds=3600,
        )
        name = str(operation.name)
        await waiting.wait()  # the first run, in the background, recorded the steps
        samples = []
        for _ in range(repeats):
            record = await store.get(name)
            resumption = Resumption(parent=record, state=Checkpoint.of(record).state, children={})
            started = time.process_time()
            await engine.resume(resumption)
            samples.append((time.process_time() - started) * 1e3)
        recorded = len(await store.journal(name))
        await store.close()
        assert recorded >= steps, f"only {recorded} events recorded"
        return statistics.median(samples)
