"""Assembly: store, tracker, Operations service, gRPC and HTTP fronts, started and stopped.

Takes plain values (AppConfig), not Settings, so tests build servers on free loopback ports
with the pieces they choose (a store, a clock, a simulated Databricks).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Callable

import grpc
from aiohttp import web
from grpc_health.v1 import health

from lro_server.api.auth import AuthOptions, IdTokenAuthenticator
from lro_server.api.databricks_services import databricks_methods
from lro_server.api.health import HealthMonitor
from lro_server.api.operations import OperationsApi
from lro_server.api.registry import Method, Registry
from lro_server.api.server import build_server
from lro_server.api.telemetry import RpcTelemetry
from lro_server.cli.listeners import Listener, bind_grpc
from lro_server.cli.parents import parent_operation
from lro_server.cli.resume_assembly import ResumeAssembly, ResumeConfig
from lro_server.cli.samples import expose_samples
from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import LroError
from lro_server.core.expiry import Expiry
from lro_server.core.hints import PushHints
from lro_server.core.measured import MeasuredStore
from lro_server.core.metrics import Metrics
from lro_server.core.notify import Notifier
from lro_server.core.observed import ObservedStore
from lro_server.core.operations import OperationsService, ServiceLimits
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.core.supervisor import Supervisor
from lro_server.databricks.client import Databricks, DatabricksOptions
from lro_server.databricks.families import all_families
from lro_server.databricks.tracker import Tracker
from lro_server.databricks.tracker_state import TrackerOptions
from lro_server.durable.method import DurableMethod
from lro_server.http.app import HttpFront, start_http
from lro_server.http.json_cache import OperationJson
from lro_server.http.operator import operator_routes
from lro_server.http.webhooks import WebhookCredentials, webhook_routes
from lro_server.resume.engine import RESUMABLE_HOLDER
from lro_server.storage.factory import open_store

_log = logging.getLogger(__name__)


def default_replica_id() -> str:
    """Host name, process id and a random suffix: unique per running server, also where
    every container has the same host name and pid (Cloud Run instances)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """Everything the application needs, already validated."""

    store: str = "sqlite:///var/lro.db"
    host: str = "127.0.0.1"
    grpc_port: int = 0
    http_port: int = 0  # -1: no HTTP front
    databricks: DatabricksOptions = dataclasses.field(default_factory=DatabricksOptions)
    replica_id: str = ""
    lease_seconds: float = 30.0
    poll_interval_seconds: float = 5.0
    max_poll_interval_seconds: float = 60.0
    first_poll_seconds: float = 1.0
    limits: ServiceLimits = dataclasses.field(default_factory=ServiceLimits)
    max_waiters: int = 20000
    max_request_bytes: int = 4 * 1024 * 1024
    spanner_threads: int = 16
    sqlite_busy_timeout_seconds: float = 2.0
    resume: ResumeConfig = dataclasses.field(default_factory=ResumeConfig)
    health_check_seconds: float = 1.0
    #: Caller authentication; None: off (every caller is ANONYMOUS).
    auth: AuthOptions | None = None
    #: PEM files for TLS on the gRPC port; both empty: plaintext (h2c, as on Cloud Run).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: Basic auth of POST /databricks/webhooks/jobs; None: webhook push off.
    webhook: WebhookCredentials | None = None
    #: Databricks notification destination attached to submitted runs and created jobs.
    webhook_destination_id: str = ""
    #: Days a done operation is kept (the SQLite sweep; Spanner's row deletion policy).
    retention_days: float = 30.0
    #: Interval of the expiry sweep (stores without a row deletion policy).
    purge_interval_seconds: float = 600.0
    #: Durable methods served (loaded by cli.methods).
    durable_methods: tuple[DurableMethod, ...] = ()


class Application:
    """One server process: call :meth:`start`, then :meth:`stop`.

    Args:
        config: What to serve and how.
        store: The backend to use instead of opening ``config.store``.
        clock: Time of the whole server (the system clock by default).
        methods: Applied to the list of served methods before they are registered (the
            benchmarks serve a constant GetOperation this way; see benchmarks/ceiling.py).
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        store: OperationStore | None = None,
        clock: Clock | None = None,
        methods: Callable[[list[Method]], list[Method]] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._given_store = store
        self._methods = methods
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._http: web.AppRunner | None = None
        self.health = health.aio.HealthServicer()
        self.metrics = Metrics()
        #: Every background loop of the server runs under it.
        self.supervisor = Supervisor(self.clock)
        self.authenticator: IdTokenAuthenticator | None = None
        self._databricks_check: asyncio.Task[None] | None = None

    @property
    def grpc_target(self) -> str:
        """host:port of the gRPC front, for clients on this machine."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP front."""
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        """Open the store, start tracking, and listen on both fronts.

        Raises:
            FailedPrecondition: A port is in use (or cannot be bound); nothing was started.
        """
        config = self.config
        self._listeners = (
            Listener("gRPC", config.host, config.grpc_port, "--grpc-port", "LRO_GRPC_PORT"),
            Listener("HTTP", config.host, config.http_port, "--http-port", "LRO_HTTP_PORT"),
        )
        for listener in self._listeners:
            listener.check()
        await self._assemble()
        await self._listen()
        await self._launch()
        _log.info(
            "serving gRPC on %s:%d, HTTP on %s:%d, store %s",
            config.host,
            self.grpc_port,
            config.host,
            self.http_port,
            config.store,
        )

    async def _assemble(self) -> None:
        """The store and its wrappers, the tracker, the services, health."""
        config = self.config
        inner = self._given_store
        if inner is None:
            inner = await open_store(config.store, clock=self.clock, **self._store_options())
        self.notifier = Notifier(config.max_waiters, clock=self.clock)
        measured = MeasuredStore(inner, self.metrics)
        self.store = ObservedStore(measured, [self._on_change, self.metrics.operation_changed])
        self.operation_json = OperationJson()
        self.store.add_listener(self.operation_json.changed)
        self.databricks = Databricks(config.databricks, metrics=self.metrics, clock=self.clock)
        holder = config.replica_id or default_replica_id()
        self.tracker = Tracker(
            self.store,
            self.databricks,
            all_families(self.clock, config.webhook_destination_id),
            TrackerOptions(
                holder=holder,
                lease_seconds=config.lease_seconds,
                poll_interval_seconds=config.poll_interval_seconds,
                max_poll_interval_seconds=config.max_poll_interval_seconds,
                first_poll_seconds=config.first_poll_seconds,
                pseudo_holders=frozenset({RESUMABLE_HOLDER}),
            ),
            clock=self.clock,
        )
        self.resume = ResumeAssembly(
            config.resume,
            self.store,
            self.tracker,
            notifier=self.notifier,
            clock=self.clock,
            limits=config.limits,
            metrics=self.metrics,
            durable_methods=config.durable_methods,
        )
        self.service: OperationsService = self.resume.service
        self.hints = PushHints(self.store, holder, self.tracker.poke, self.clock)
        self.expiry = Expiry(self.store, self.clock, parent_of=parent_operation)
        methods = [
            *OperationsApi(self.service).methods(),
            *databricks_methods(self.service, self.tracker.poke),
            *self.resume.methods(),
        ]
        if self._methods is not None:
            methods = self._methods(methods)
        self.registry = Registry(methods)
        self.resume.registry = self.registry
        telemetry = RpcTelemetry(self.metrics)
        expose_samples(
            self.metrics,
            tracker=self.tracker,
            databricks=self.databricks,
            notifier=self.notifier,
            supervisor=self.supervisor,
            store=inner,
        )
        self.monitor = HealthMonitor(
            self.store,
            self.health,
            self.registry.services(),
            self.supervisor,
            interval=config.health_check_seconds,
            clock=self.clock,
        )
        measured.add_unavailable_listener(self.monitor.store_failed)
        if config.auth is not None:
            self.authenticator = IdTokenAuthenticator(config.auth)
        self._telemetry = telemetry

    async def _listen(self) -> None:
        """Both fronts, bound and serving (a taken port closes what was opened)."""
        config = self.config
        telemetry = self._telemetry
        self._grpc = build_server(
            self.registry,
            authenticate=self.authenticator,
            max_request_bytes=config.max_request_bytes,
            health_servicer=self.health,
            telemetry=telemetry,
        )
        try:
            self.grpc_port = bind_grpc(
                self._grpc, self._listeners[0], config.tls_cert_file, config.tls_key_file
            )
        except LroError:
            await self.store.close()
            raise
        await self._grpc.start()
        if config.http_port >= 0:
            front = HttpFront(
                self.registry,
                authenticate=self.authenticator,
                max_request_bytes=config.max_request_bytes,
                telemetry=telemetry,
                operation_json=self.operation_json,
                extra_routes=[
                    *operator_routes(self.metrics, self.monitor),
                    *webhook_routes(config.webhook, self.hints.run),
                ],
            )
            try:
                self._http, self.http_port = await start_http(front, config.host, config.http_port)
            except OSError as exc:  # taken since it was checked
                await self._grpc.stop(0)
                await self.store.close()
                raise self._listeners[1].error(exc) from None

    async def _launch(self) -> None:
        """The background loops (under the supervisor) and the first health check."""
        config = self.config
        self.tracker.launch(self.supervisor)
        await self.resume.launch(self.supervisor)
        if not config.store.startswith("spanner://"):  # Spanner expires rows itself
            self.supervisor.start(
                "expiry",
                lambda: self.expiry.run(config.retention_days, config.purge_interval_seconds),
            )
        await self.monitor.check()
        self.monitor.launch()
        self._databricks_check = asyncio.create_task(
            self._check_databricks(), name="databricks-check"
        )

    def _store_options(self) -> dict[str, float]:
        if self.config.store.startswith("spanner://"):
            return {"threads": self.config.spanner_threads}
        return {"busy_timeout": self.config.sqlite_busy_timeout_seconds}

    async def _check_databricks(self) -> None:
        """Say at startup, in one line, that Databricks is not configured (and how to fix it).

        A background task: with a host configured, the check probes it (bounded), and
        serving must not wait for that.
        """
        problem = await self.databricks.configuration_problem()
        if problem is not None:
            _log.warning(
                "%s; until then every start method answers %s", problem.message, problem.code.name
            )

    def _on_change(self, name: str, record: OperationRecord | None) -> None:
        if record is None or record.done:
            self.notifier.notify(name, record)

    async def stop(self, grace: float = 5.0) -> None:
        """Drain in-flight calls for up to ``grace`` seconds, release leases, close."""
        if self._databricks_check is not None:
            self._databricks_check.cancel()
            await asyncio.gather(self._databricks_check, return_exceptions=True)
        await self.monitor.stop()
        await self.health.enter_graceful_shutdown()
        # Held WaitOperation calls answer now with the latest state (AIP-151 lets a wait
        # return before its timeout); other calls get ``grace`` seconds to finish.
        self.notifier.drain()
        fronts = []
        if self._grpc is not None:
            fronts.append(self._grpc.stop(grace))
        if self._http is not None:
            fronts.append(self._http.cleanup())
        await asyncio.gather(*fronts)
        if self.authenticator is not None:
            await self.authenticator.close()
        await self.resume.stop()
        await self.tracker.stop()
        await self.supervisor.stop()  # whatever loop its owner did not stop
        await self.databricks.close()
        await self.store.close()
