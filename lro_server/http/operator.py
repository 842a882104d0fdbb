"""Operator routes of the HTTP front: ``/healthz``, ``/readyz`` and ``/metrics``.

- ``GET /healthz``: liveness, 200 while the process runs (the loop answers).
- ``GET /readyz``: readiness, 200 while the store answers its pings and every background
  loop runs, else 503 with the reason.
- ``GET /metrics``: Prometheus text exposition of this server's own registry.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lro_server.core.metrics import Metrics


class Readiness(Protocol):
    """What /readyz reports (the health monitor)."""

    @property
    def ready(self) -> bool:
        """Whether the server can serve."""
        ...

    @property
    def reason(self) -> str:
        """Why it cannot ("ok" when it can)."""
        ...


def operator_routes(metrics: Metrics, readiness: Readiness) -> list[web.RouteDef]:
    """Routes to pass as ``HttpFront(extra_routes=...)``."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if readiness.ready:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "unavailable", "reason": readiness.reason}, status=503)

    async def scrape(_: web.Request) -> web.Response:
        # Rendering reads in-memory values only (no I/O), so it stays on the loop.
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", scrape)]
