"""Readiness follows the store and the background loops; it flips gRPC health and /readyz.

Without its store the server can answer nothing useful, so a failing ping turns the standard
gRPC health service to NOT_SERVING (overall and for each served service) and ``/readyz`` to
503; load balancers then route elsewhere until a ping succeeds again. The same happens while
a supervised background loop is down (:mod:`lro_server.core.supervisor`): a server whose
tracker died would accept work it never follows. Liveness (``/healthz``) is tied to neither:
restarting the process would not bring the store back, and the supervisor restarts loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from grpc_health.v1 import health, health_pb2

from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import LroError
from lro_server.core.store import OperationStore
from lro_server.core.supervisor import Supervised, Supervisor

_log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthMonitor:
    """Pings ``store`` and publishes readiness: the store answers and no loop of
    ``supervisor`` is down.

    The store is pinged every ``interval`` seconds while it answers, at once when a store
    call fails with Unavailable (:meth:`store_failed`), and every ``recheck`` seconds while
    it does not answer, so readiness follows the store both ways within about a second.

    Args:
        store: The store to ping.
        servicer: The gRPC health servicer to update.
        services: Service names whose status follows readiness (besides the overall "").
        supervisor: The background loops that must be running; tells the monitor at once
            when one goes down or runs again.
        interval: Seconds between pings while the store answers.
        timeout: A ping slower than this counts as a failure (a hung network store).
        recheck: Seconds between pings while it does not.
        clock: Time of the schedule and of the ping's deadline.
    """

    def __init__(
        self,
        store: OperationStore,
        servicer: health.aio.HealthServicer,
        services: Iterable[str],
        supervisor: Supervisor,
        *,
        interval: float = 1.0,
        timeout: float = 1.0,
        recheck: float = 0.25,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.servicer = servicer
        self.services = ["", *services]
        self.supervisor = supervisor
        self.interval = interval
        self.timeout = timeout
        self.recheck = recheck
        self._clock: Clock = clock or SystemClock()
        self._wake = asyncio.Event()
        self.store_ready = False
        self.store_reason = "not checked yet"
        self._published: bool | None = None
        self._loop: Supervised | None = None
        supervisor.add_listener(self.publish)

    @property
    def ready(self) -> bool:
        """Whether the server is ready: the store answers and every background loop runs."""
        return self.store_ready and not self.supervisor.down

    @property
    def reason(self) -> str:
        """Why the server is not ready ("ok" when it is)."""
        if not self.store_ready:
            return self.store_reason
        down = self.supervisor.down
        return "; ".join(down[name] for name in sorted(down)) if down else "ok"

    def store_failed(self) -> None:
        """A store call failed with Unavailable: ping now (unless already pinging often)."""
        if self.store_ready:
            self._wake.set()

    async def check(self) -> bool:
        """Ping once, publish the result, and return whether the store answered."""
        try:
            async with self._clock.timeout(self.timeout):
                await self.store.ping()
        except TimeoutError:
            ready, reason = False, f"store ping took longer than {self.timeout:g}s"
        except LroError as exc:
            ready, reason = False, f"store unavailable: {exc.message}"
        except Exception as exc:
            ready, reason = False, f"store ping failed: {type(exc).__name__}"
        else:
            ready, reason = True, "ok"
        self.store_ready, self.store_reason = ready, reason
        await self.publish()
        return ready

    async def publish(self) -> None:
        """Set the gRPC health status of every service to the current readiness."""
        ready = self.ready
        if ready != self._published:
            log = _log.info if ready else _log.warning
            log("readiness: %s (%s)", "SERVING" if ready else "NOT_SERVING", self.reason)
        self._published = ready
        status = SERVING if ready else NOT_SERVING
        for service in self.services:
            await self.servicer.set(service, status)

    def launch(self) -> None:
        """Start pinging in the background, under the supervisor."""
        self._loop = self.supervisor.start("health", self._run)

    async def _run(self) -> None:
        while True:
            pause = self.interval if self.store_ready else self.recheck
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(pause):
                    await self._wake.wait()
            self._wake.clear()
            await self.check()

    async def stop(self) -> None:
        """Stop pinging (before the servicer enters graceful shutdown)."""
        if self._loop is not None:
            await self._loop.stop()
            self._loop = None
