"""The embedded waiter on fake time: wakes on a child's completion, at the parent's
deadline, and by its periodic re-read for children finished by another replica."""

from __future__ import annotations

import dataclasses
import json

import pytest
from engine_fakes import ScriptedMethod, child_record, struct

from lro_server.core import lifecycle
from lro_server.core.observed import ObservedStore
from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal
from lro_server.core.supervisor import Supervisor
from lro_server.resume.embedded import EmbeddedWaiter
from lro_server.resume.engine import Resumer
from lro_server.resume.method import Resumption
from lro_server.resume.workflows import WorkflowsOptions, execution_argument
from lro_server.testing import MemoryStore
from lro_server.testing.clock import FakeClock
from lro_server.testing.flaky_store import FlakyStore

ALICE = Principal(subject="alice")
CHILD = "operations/00000000-0000-4000-8000-00000000000a"
PARENT = "operations/00000000-0000-4000-8000-0000000000ff"


@dataclasses.dataclass
class Rig:
    clock: FakeClock
    inner: MemoryStore
    flaky: FlakyStore
    store: ObservedStore
    method: ScriptedMethod
    waiter: EmbeddedWaiter
    service: OperationsService

    async def start(self, timeout: float = 3600.0) -> str:
        operation = await self.service.start(
            caller=ALICE, method=self.method.method, family="scripted", payload="{}",
            timeout_seconds=timeout,
        )  # fmt: skip
        return str(operation.name)

    async def finish(self, name: str, store: object | None = None) -> None:
        target = store or self.store
        record = await target.get(name)  # type: ignore[attr-defined]
        await target.update(lifecycle.succeed(record, struct(done=True)))  # type: ignore[attr-defined]


@pytest.fixture
async def rig():  # type: ignore[no-untyped-def]
    clock = FakeClock()
    inner = MemoryStore(clock)
    flaky = FlakyStore(inner)
    store = ObservedStore(flaky)
    method = ScriptedMethod(first_children=(CHILD,))
    await store.create(child_record(CHILD))
    resumer = Resumer(store, [method], clock=clock)
    waiter = EmbeddedWaiter(resumer, store, clock=clock, recheck_seconds=10.0)
    store.add_listener(waiter.on_change)

    async def cancel_child(name: str) -> None:
        return None

    resumer.bind(waiter, cancel_child)
    service = OperationsService(store, resumer, clock=clock)
    supervisor = Supervisor(clock)
    waiter.launch(supervisor)
    yield Rig(clock, inner, flaky, store, method, waiter, service)
    await supervisor.stop()
    await waiter.stop()
    await resumer.stop()


async def test_a_child_finishing_here_resumes_the_parent_at_once(rig: Rig) -> None:
    name = await rig.start()
    assert rig.waiter.pending == 1

    await rig.finish(CHILD)
    await rig.clock.settle()

    assert (await rig.store.get(name)).done
    assert rig.waiter.pending == 0 and rig.waiter.resumes == 1


async def test_a_child_finished_already_resumes_on_hand_off(rig: Rig) -> None:
    await rig.finish(CHILD)
    name = await rig.start()
    await rig.clock.settle()
    assert (await rig.store.get(name)).done


async def test_the_parents_deadline_resumes_with_a_timeout(rig: Rig) -> None:
    seen: list[Resumption] = []

    async def decide(resumption: Resumption):  # type: ignore[no-untyped-def]
        seen.append(resumption)
        return await ScriptedMethod().resume(resumption)

    rig.method.decide = decide
    name = await rig.start(timeout=120.0)
    await rig.clock.advance(119.0)
    assert seen == []
    await rig.clock.advance(1.0)

    assert [r.timed_out for r in seen] == [True]
    assert (await rig.store.get(name)).done


async def test_a_child_finished_by_another_replica_is_found_by_the_re_read(rig: Rig) -> None:
    name = await rig.start()
    await rig.finish(CHILD, rig.inner)  # no local notification
    await rig.clock.advance(9.0)
    assert not (await rig.store.get(name)).done
    await rig.clock.advance(1.0)
    assert (await rig.store.get(name)).done


async def test_a_transient_resume_failure_keeps_the_wait(rig: Rig) -> None:
    name = await rig.start()
    rig.flaky.down()  # the store is unreachable from here ...
    await rig.finish(CHILD, rig.inner)  # ... when the child is written done
    rig.waiter.on_change(CHILD, await rig.inner.get(CHILD))
    await rig.clock.settle()
    assert rig.waiter.pending == 1  # the resume failed with Unavailable: the wait is kept

    rig.flaky.up()
    await rig.clock.advance(10.0)  # the periodic re-read resumes it
    assert (await rig.store.get(name)).done


def test_the_workflow_execution_argument_is_the_whole_contract() -> None:
    from lro_server.resume.waiter import WaitTicket

    ticket = WaitTicket(
        parent=PARENT,
        method="lro.databricks.v1.Chains/RunChain",
        wait_id=3,
        children=(CHILD,),
        deadline_us=10_000_000,
    )
    options = WorkflowsOptions(workflow="projects/p/locations/l/workflows/w")
    argument = execution_argument(ticket, options, now_us=4_000_000)
    assert argument == {
        "operationId": PARENT.removeprefix("operations/"),
        "operation": PARENT,
        "children": [CHILD],
        "resumeMethod": "lro.databricks.v1.Chains/RunChain",
        "waitId": "3",
        "timeoutSeconds": 6.0,
        "poll": {"initialDelaySeconds": 2.0, "maxDelaySeconds": 60.0, "multiplier": 2.0},
    }
    assert json.loads(json.dumps(argument)) == argument
