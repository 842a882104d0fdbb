"""The health monitor: readiness is the store answering and every background loop running;
it follows the store at once when a call fails, and quickly when it answers again.

No sockets and no waiting: the gRPC health servicer is asked directly, the store is the
in-memory one behind a switch, and the monitor's schedule runs on a FakeClock that the
tests move.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from grpc_health.v1 import health, health_pb2

from lro_server.api.health import HealthMonitor
from lro_server.core.errors import Unavailable
from lro_server.core.measured import MeasuredStore
from lro_server.core.metrics import Metrics
from lro_server.core.record import OperationRecord
from lro_server.core.supervisor import Supervisor
from lro_server.testing import MemoryStore
from lro_server.testing.clock import FakeClock

SERVICES = ["google.longrunning.Operations", "lro.databricks.v1.Jobs"]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
INTERVAL, RECHECK = 5.0, 0.25


class Switch(MemoryStore):
    """The in-memory store, unreachable while ``down``; counts pings."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.down = False
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise Unavailable("the store is unreachable")

    async def get(self, name: str) -> OperationRecord:
        if self.down:
            raise Unavailable("the store is unreachable")
        return await super().get(name)


class Parts:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = Switch(self.clock)
        self.measured = MeasuredStore(self.store, Metrics())
        self.supervisor = Supervisor(self.clock, first_backoff=10, max_backoff=10)
        self.servicer = health.aio.HealthServicer()
        self.monitor = HealthMonitor(
            self.measured,
            self.servicer,
            SERVICES,
            self.supervisor,
            interval=INTERVAL,
            recheck=RECHECK,
            timeout=1.0,
            clock=self.clock,
        )
        self.measured.add_unavailable_listener(self.monitor.store_failed)

    async def status(self, service: str = "") -> int:
        answer = await self.servicer.Check(health_pb2.HealthCheckRequest(service=service), None)
        return int(answer.status)


@pytest.fixture
async def parts() -> AsyncIterator[Parts]:
    made = Parts()
    await made.monitor.check()
    made.monitor.launch()
    await made.clock.settle()
    yield made
    await made.monitor.stop()
    await made.supervisor.stop()


async def test_every_service_follows_readiness(parts: Parts) -> None:
    for service in ["", *SERVICES]:
        assert await parts.status(service) == SERVING

    parts.store.down = True
    await parts.monitor.check()

    assert not parts.monitor.ready
    assert parts.monitor.reason == "store unavailable: the store is unreachable"
    for service in ["", *SERVICES]:
        assert await parts.status(service) == NOT_SERVING


async def test_while_the_store_answers_it_is_pinged_every_interval(parts: Parts) -> None:
    pings = parts.store.pings
    await parts.clock.advance(INTERVAL - 0.01)
    assert parts.store.pings == pings
    await parts.clock.advance(0.01)
    assert parts.store.pings == pings + 1
    await parts.clock.advance(3 * INTERVAL)
    assert parts.store.pings == pings + 4


async def test_a_failing_store_call_makes_the_monitor_ping_at_once(parts: Parts) -> None:
    parts.store.down = True

    with pytest.raises(Unavailable):
        await parts.measured.get("operations/x")
    await parts.clock.settle()  # no time passes

    assert not parts.monitor.ready
    assert await parts.status() == NOT_SERVING


async def test_while_not_ready_the_store_is_pinged_often_and_readiness_comes_back(
    parts: Parts,
) -> None:
    parts.store.down = True
    with pytest.raises(Unavailable):
        await parts.measured.get("operations/x")
    await parts.clock.settle()
    pings = parts.store.pings

    await parts.clock.advance(4 * RECHECK)
    assert parts.store.pings == pings + 4
    parts.store.down = False
    await parts.clock.advance(RECHECK)

    assert parts.monitor.ready
    assert await parts.status() == SERVING


async def test_failures_while_not_ready_add_no_pings(parts: Parts) -> None:
    parts.store.down = True
    await parts.monitor.check()
    pings = parts.store.pings

    for _ in range(50):
        with pytest.raises(Unavailable):
            await parts.measured.get("operations/x")
    await parts.clock.settle()

    assert parts.store.pings == pings  # the next ping is the recheck's


async def test_a_ping_that_hangs_counts_as_a_failure(parts: Parts) -> None:
    hang = asyncio.Event()

    async def hung_ping() -> None:
        await hang.wait()

    parts.store.ping = hung_ping  # type: ignore[method-assign]
    check = asyncio.ensure_future(parts.monitor.check())
    await parts.clock.advance(1.0)

    assert await check is False
    assert parts.monitor.reason == "store ping took longer than 1s"


async def test_a_loop_that_is_down_makes_the_server_not_ready_with_its_reason(
    parts: Parts,
) -> None:
    async def dies() -> None:
        raise RuntimeError("bug")

    parts.supervisor.start("tracker", dies)
    await parts.clock.settle()

    assert not parts.monitor.ready
    assert parts.monitor.reason.startswith("background loop tracker died (RuntimeError: bug)")
    assert parts.monitor.store_ready  # the store itself is fine
    assert await parts.status() == NOT_SERVING
