"""The aiohttp application: auth, fault injection, call recording, families' routes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .behaviour import RunBehaviour
from .clock import Clock, monotonic
from .clusters import ClustersFamily
from .commands import CommandsFamily
from .control_http import control_routes
from .controls import SimulatorControls
from .errors import ApiError, unauthenticated
from .jobs import JobsFamily
from .libraries import LibrariesFamily
from .pipelines import PipelinesFamily
from .routing import Handler, SimRequest
from .statements import StatementsFamily
from .warehouses import WarehousesFamily
from .webhooks import WebhookDelivery
from .world import CallRecord, Family, World

__all__ = ["DatabricksSimulator"]

_VERSION_PREFIX = re.compile(r"^/api/\d+\.\d+/")
_AioHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(err: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers=headers)


def _route_of(path: str) -> str:
    return _VERSION_PREFIX.sub("", path).lstrip("/")


class DatabricksSimulator(SimulatorControls):
    """A fake Databricks workspace serving the REST API on real HTTP.

    Entities follow configurable timelines computed from the injected clock on every
    read. Use it from async tests (``await sim.start()``) or through
    :class:`SimulatorThread` from sync code or from another event loop.
    """

    def __init__(
        self,
        *,
        clock: Clock = monotonic,
        seed: int = 0,
        require_token: bool = True,
        workspace_id: str = "1234567890123456",
        behaviour: RunBehaviour | None = None,
        demo_job: bool = False,
    ) -> None:
        """Creates a stopped simulator.

        Args:
            clock: Monotonic seconds; entity states advance with it.
            seed: Seeds the random generator of probabilistic faults (and of failing runs).
            require_token: Answer 401 to calls without ``Authorization: Bearer ...``.
            workspace_id: Announced by ``/.well-known/databricks-config``.
            behaviour: How runs without a configured timeline go (run seconds, fail ratio,
                hold); the default follows the presets.
            demo_job: Start with job 1, ``demo`` (four tasks with dependencies).
        """
        self._world = World(clock, seed, behaviour)
        self._require_token = require_token
        self._workspace_id = workspace_id
        self._world.families.extend(self._families())
        self.webhooks = WebhookDelivery(self._world)
        self._world.webhooks = self.webhooks
        if demo_job:
            self.jobs.add_demo_job()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def _families(self) -> list[Family]:
        clusters = ClustersFamily(self._world)
        self.jobs = JobsFamily(self._world)
        warehouses = WarehousesFamily(self._world)
        return [
            self.jobs,
            clusters,
            CommandsFamily(self._world, clusters),
            LibrariesFamily(self._world, clusters),
            PipelinesFamily(self._world),
            warehouses,
            StatementsFamily(self._world, warehouses),
        ]

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:43123`` (DATABRICKS_HOST).

        Raises:
            RuntimeError: Not started.
        """
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Starts serving; ``port=0`` picks a free port (read it from :attr:`url`)."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self.webhooks.start()
        # runner.addresses holds the bound (host, port) of each socket: port 0 is resolved.
        bound_port = int(runner.addresses[0][1]) if runner.addresses else port
        self._url = f"http://{host}:{bound_port}"
        with self._world.lock:
            self._world.url = self._url

    async def stop(self) -> None:
        """Stops serving (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await self.webhooks.stop()
            await runner.cleanup()

    def app(self) -> web.Application:
        """Builds the aiohttp application (one per start)."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/.well-known/databricks-config", self._well_known)
        for method, path, handler in control_routes(self):
            app.router.add_route(method, path, handler)
        for family in self._world.families:
            for route in family.routes():
                app.router.add_route(route.method, route.path, self._wrap(route.handler))
        return app

    async def _well_known(self, request: web.Request) -> web.Response:
        # The SDK reads this on every Config(): with a workspace_id and an oidc_endpoint it
        # treats the host as a workspace and resolves OIDC lazily (never for PAT auth).
        return web.json_response(
            {
                "oidc_endpoint": f"{self.url}/oidc",
                "workspace_id": self._workspace_id,
                "cloud": "AWS",
            }
        )

    def _wrap(self, handler: Handler) -> _AioHandler:
        async def handle(request: web.Request) -> web.StreamResponse:
            body: Any = {}
            if request.can_read_body:
                try:
                    body = await request.json()
                except json.JSONDecodeError:
                    return _error(ApiError(400, "MALFORMED_REQUEST", "Invalid JSON given"))
                if not isinstance(body, dict):
                    return _error(ApiError(400, "MALFORMED_REQUEST", "Expected a JSON object"))
            world = self._world
            with world.lock:
                req = SimRequest(
                    request.method,
                    request.path,
                    request.match_info,
                    request.query,
                    body,
                    world.now(),
                )
                try:
                    return web.json_response(handler(req))
                except ApiError as err:
                    return _error(err)

        return handle

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _AioHandler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return await handler(request)
        record = self._world.record_call
        method = request.method
        if path.startswith("/.well-known/"):
            response = await handler(request)
            record(CallRecord(method, path, _route_of(path), response.status))
            return response
        if self._require_token and not _has_bearer(request):
            record(CallRecord(method, path, _route_of(path), 401))
            return _error(unauthenticated())
        with self._world.lock:
            fault = self._world.faults.pick(method, path)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.kind in ("rate_limit", "unavailable"):
            err = (
                ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please retry later.")
                if fault.kind == "rate_limit"
                else ApiError(
                    503, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable."
                )
            )
            record(CallRecord(method, path, _route_of(path), err.status, kind))
            return _error(err, {"Retry-After": str(fault.retry_after)})
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # Unknown paths and methods: Databricks answers JSON, not aiohttp's text page.
            code = "ENDPOINT_NOT_FOUND" if exc.status == 404 else "BAD_REQUEST"
            response = _error(ApiError(exc.status, code, f"No API found for '{method} {path}'"))
        record(CallRecord(method, path, _route_of(path), response.status, kind))
        if fault is not None and fault.kind == "slow_after_commit":
            await asyncio.sleep(fault.delay)  # applied and logged; the answer is late
        if fault is not None and fault.kind == "drop_after_commit" and request.transport:
            # The effect is applied; aborting the socket before aiohttp writes the answer
            # makes the client see "Remote end closed connection without response".
            request.transport.abort()
        return response


def _has_bearer(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())
