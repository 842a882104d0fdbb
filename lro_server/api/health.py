"""Readiness follows the store: a background task pings it and flips gRPC health and /readyz.

Without its store the server can answer nothing useful, so a failing ping turns the standard
gRPC health service to NOT_SERVING (overall and for each served service) and ``/readyz`` to
503; load balancers then route elsewhere until a ping succeeds again. Liveness (``/healthz``)
is not tied to the store: restarting the process would not bring the store back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from grpc_health.v1 import health, health_pb2

from lro_server.core.errors import LroError
from lro_server.core.store import OperationStore

_log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthMonitor:
    """Pings ``store`` every ``interval`` seconds and publishes the result.

    Args:
        store: The store to ping.
        servicer: The gRPC health servicer to update.
        services: Service names whose status follows the store (besides the overall "").
        interval: Seconds between pings.
        timeout: A ping slower than this counts as a failure (a hung network store).
    """

    def __init__(
        self,
        store: OperationStore,
        servicer: health.aio.HealthServicer,
        services: Iterable[str],
        *,
        interval: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.servicer = servicer
        self.services = ["", *services]
        self.interval = interval
        self.timeout = timeout
        self.ready = False
        self.reason = "not checked yet"
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """Ping once, publish the result, and return whether the store answered."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.store.ping()
        except TimeoutError:
            ready, reason = False, f"store ping took longer than {self.timeout:g}s"
        except LroError as exc:
            ready, reason = False, f"store unavailable: {exc.message}"
        except Exception as exc:
            ready, reason = False, f"store ping failed: {type(exc).__name__}"
        else:
            ready, reason = True, "ok"
        if ready != self.ready:
            log = _log.info if ready else _log.warning
            log("readiness: %s (%s)", "SERVING" if ready else "NOT_SERVING", reason)
        self.ready, self.reason = ready, reason
        status = SERVING if ready else NOT_SERVING
        for service in self.services:
            await self.servicer.set(service, status)
        return ready

    def launch(self) -> None:
        """Start pinging in the background."""
        self._task = asyncio.create_task(self._run(), name="health")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def stop(self) -> None:
        """Stop pinging (before the servicer enters graceful shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
