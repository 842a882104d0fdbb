"""A durable engine on the in-memory store and fake time, for the unit tier.

The Resumer runs the DurableEngine; the embedded waiter (children) and the TimedWaiter
(timers, promises) resume it, all on the test's event loop. Children are fake operations
(a FakeRunner): the test ends them with :meth:`DurableRig.finish_child`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from engine_fakes import FakeRunner, struct
from google.longrunning import operations_pb2
from google.protobuf import json_format, struct_pb2

from lro_server.core import lifecycle
from lro_server.core.errors import Code
from lro_server.core.observed import ObservedStore
from lro_server.core.operations import OperationsService
from lro_server.core.principal import INTERNAL, Principal
from lro_server.core.record import OperationRecord
from lro_server.core.runners import RunnerRouter
from lro_server.core.store import OperationStore
from lro_server.durable import DurableMethod
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.durable_engine import START_METHOD, DurableEngine
from lro_server.resume.durable_journal import Fold
from lro_server.resume.durable_payload import FAMILY, Payload
from lro_server.resume.durable_view import integral
from lro_server.resume.embedded import EmbeddedWaiter
from lro_server.resume.engine import Resumer
from lro_server.resume.method import WaitOutcome
from lro_server.resume.timers import TimedWaiter
from lro_server.testing import MemoryData, MemoryStore
from lro_server.testing.clock import FakeClock

OWNER = Principal(subject="alice")


@dataclasses.dataclass
class DurableRig:
    clock: FakeClock
    store: ObservedStore
    engine: DurableEngine
    resumer: Resumer
    service: OperationsService
    runner: FakeRunner
    started: list[tuple[str, dict[str, Any], str]]
    cancelled: list[str]

    def serve(self, *functions: Callable[..., Any]) -> None:
        """Serve the durable methods marked on ``functions``."""
        for function in functions:
            marked: DurableMethod = function.__lro_durable_method__  # type: ignore[attr-defined]
            self.engine.methods[marked.name] = marked

    async def start(
        self, method: str, request: dict[str, Any] | None = None, *, timeout: float = 3600.0
    ) -> str:
        payload = Payload(method, dict(request or {}), {"team": "ml"})
        operation = await self.service.start(
            caller=OWNER,
            method=START_METHOD,
            family=FAMILY,
            payload=payload.encode(),
            timeout_seconds=timeout,
        )
        await self.settle()
        return str(operation.name)

    async def start_only(self, method: str) -> str:
        """Start ``method`` without letting its background activation run yet."""
        operation = await self.service.start(
            caller=OWNER,
            method=START_METHOD,
            family=FAMILY,
            payload=Payload(method, {}, {}).encode(),
            timeout_seconds=3600,
        )
        return str(operation.name)

    async def settle(self) -> None:
        """Let background resumes finish (a sync step runs on a real thread)."""
        deadline = time.monotonic() + 10
        while True:
            await self.clock.advance(0)
            if not self.resumer.busy:
                return
            assert time.monotonic() < deadline, "background resumes did not finish"
            await asyncio.sleep(0.001)

    async def advance(self, seconds: float) -> None:
        """Move fake time, then let what it woke finish."""
        await self.clock.advance(seconds)
        await self.settle()

    async def record(self, name: str) -> OperationRecord:
        return await self.store.get(name)

    async def fold(self, name: str) -> Fold:
        return Fold(await self.store.journal(name))

    async def result(self, name: str) -> dict[str, Any]:
        record = await self.record(name)
        assert record.done, f"{name} is not done"
        assert not record.operation.HasField("error"), record.operation.error
        response = struct_pb2.Struct()
        record.operation.response.Unpack(response)
        return dict(integral(json_format.MessageToDict(response)))

    async def error(self, name: str) -> tuple[int, str]:
        record = await self.record(name)
        assert record.done and record.operation.HasField("error"), record.operation
        return record.operation.error.code, record.operation.error.message

    async def children(self) -> list[str]:
        return [name for name, _, _ in self.started]

    async def finish_child(
        self, name: str, *, response: dict[str, Any] | None = None, code: int = 0, message: str = ""
    ) -> None:
        record = await self.store.get(name)
        if code:
            done = lifecycle.fail(record, Code(code), message or "child failed")
        else:
            done = lifecycle.succeed(record, struct(**(response or {"ok": True})))
        await self.store.update(done)
        await self.settle()

    async def waiting(self, name: str) -> Checkpoint:
        checkpoint = Checkpoint.of(await self.record(name))
        assert checkpoint.wait is not None, "not waiting"
        return checkpoint

    async def resume(self, name: str, **kwargs: Any) -> operations_pb2.Operation:
        return await self.resumer.resume(name, INTERNAL, method=START_METHOD, **kwargs)


def durable_rig(
    clock: FakeClock | None = None,
    data: MemoryData | None = None,
    wrap: Callable[[OperationStore], OperationStore] = lambda store: store,
) -> DurableRig:
    """A fresh engine; pass another rig's clock and ``store.inner.data`` for a second
    process over the same database (a restart), ``wrap`` to put a fake around the store."""
    clock = clock or FakeClock()
    store = ObservedStore(wrap(MemoryStore(clock, data=data)))
    runner = FakeRunner()
    started: list[tuple[str, dict[str, Any], str]] = []
    cancelled: list[str] = []
    resumer = Resumer(store, [], clock=clock)
    service = OperationsService(store, RunnerRouter(runner, {FAMILY: resumer}), clock=clock)

    async def start_child(
        method: str, request: dict[str, Any], *, owner: str, request_id: str, name: str
    ) -> operations_pb2.Operation:
        if method.endswith("/Refuse"):
            from lro_server.core.errors import InvalidArgument

            raise InvalidArgument(f"{method} refuses {request}")
        operation = await service.start(
            caller=Principal(subject=owner),
            method=method,
            family="fake",
            payload=json.dumps(request),
            timeout_seconds=600,
            request_id=request_id,
            name=name,
        )
        if operation.name not in [s[0] for s in started]:
            started.append((operation.name, request, request_id))
        return operation

    engine = DurableEngine(store, {}, start_child, clock=clock)
    resumer.add(engine)
    embedded = EmbeddedWaiter(resumer, store, clock=clock)
    store.add_listener(embedded.on_change)

    def resume(ticket: Any, outcome: WaitOutcome) -> None:
        resumer.spawn(resumer.resume_ticket(ticket, outcome))

    waiter = TimedWaiter(embedded, resume, clock)

    async def cancel_child(child: str) -> None:
        cancelled.append(child)
        await service.cancel(child, INTERNAL)

    resumer.bind(waiter, cancel_child)

    def on_resolved(record: OperationRecord) -> None:
        checkpoint = Checkpoint.of(record)
        if checkpoint.wait is not None and checkpoint.wait.promises:
            resume(resumer.ticket(record, checkpoint), WaitOutcome.DONE)

    engine.on_resolved = on_resolved
    return DurableRig(clock, store, engine, resumer, service, runner, started, cancelled)
