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

import grpc
from aiohttp import web
from grpc_health.v1 import health

from lro_server.api.auth import AuthOptions, IdTokenAuthenticator
from lro_server.api.ceiling import with_constant_get
from lro_server.api.databricks_services import databricks_methods
from lro_server.api.health import HealthMonitor
from lro_server.api.operations import OperationsApi
from lro_server.api.registry import Registry
from lro_server.api.server import build_server
from lro_server.api.telemetry import RpcTelemetry
from lro_server.cli.resume_assembly import ResumeAssembly, ResumeConfig
from lro_server.core.clock import Clock, SystemClock
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
    resume: ResumeConfig = dataclasses.field(default_factory=ResumeConfig)
    health_check_seconds: float = 5.0
    #: Benchmark only: GetOperation answers a constant (see lro_server.api.ceiling).
    benchmark_ceiling: bool = False
    #: Caller authentication; None: off (every caller is ANONYMOUS).
    auth: AuthOptions | None = None
    #: PEM files for TLS on the gRPC port; both empty: plaintext (h2c, as on Cloud Run).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: Durable methods served (loaded by cli.methods).
    durable_methods: tuple[DurableMethod, ...] = ()


class Application:
    """One server process: call :meth:`start`, then :meth:`stop`."""

    def __init__(
        self, config: AppConfig, *, store: OperationStore | None = None, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._given_store = store
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._http: web.AppRunner | None = None
        self.health = health.aio.HealthServicer()
        self.metrics = Metrics()
        #: Every background loop of the server runs under it.
        self.supervisor = Supervisor(self.clock)
        self.authenticator: IdTokenAuthenticator | None = None

    @property
    def grpc_target(self) -> str:
        """host:port of the gRPC front, for clients on this machine."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP front."""
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        """Open the store, start tracking, and listen on both fronts."""
        config = self.config
        inner = self._given_store
        if inner is None:
            options = (
                {"threads": config.spanner_threads} if config.store.startswith("spanner://") else {}
            )
            inner = await open_store(config.store, clock=self.clock, **options)
        self.notifier = Notifier(config.max_waiters, clock=self.clock)
        self.store = ObservedStore(
            MeasuredStore(inner, self.metrics), [self._on_change, self.metrics.operation_changed]
        )
        self.operation_json = OperationJson()
        self.store.add_listener(self.operation_json.changed)
        self.databricks = Databricks(config.databricks, metrics=self.metrics)
        self.tracker = Tracker(
            self.store,
            self.databricks,
            all_families(),
            TrackerOptions(
                holder=config.replica_id or default_replica_id(),
                lease_seconds=config.lease_seconds,
                poll_interval_seconds=config.poll_interval_seconds,
                max_poll_interval_seconds=config.max_poll_interval_seconds,
                first_poll_seconds=config.first_poll_seconds,
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
        methods = [
            *OperationsApi(self.service).methods(),
            *databricks_methods(self.service, self.tracker.poke),
            *self.resume.methods(),
        ]
        if config.benchmark_ceiling:
            methods = with_constant_get(methods)
        self.registry = Registry(methods)
        self.resume.registry = self.registry
        telemetry = RpcTelemetry(self.metrics)
        self._expose_samples()
        self.monitor = HealthMonitor(
            self.store,
            self.health,
            self.registry.services(),
            self.supervisor,
            interval=config.health_check_seconds,
        )
        if config.auth is not None:
            self.authenticator = IdTokenAuthenticator(config.auth)
        self._grpc = build_server(
            self.registry,
            authenticate=self.authenticator,
            max_request_bytes=config.max_request_bytes,
            health_servicer=self.health,
            telemetry=telemetry,
        )
        self.grpc_port = self._bind_grpc(self._grpc)
        await self._grpc.start()
        if config.http_port >= 0:
            front = HttpFront(
                self.registry,
                authenticate=self.authenticator,
                max_request_bytes=config.max_request_bytes,
                telemetry=telemetry,
                operation_json=self.operation_json,
                extra_routes=operator_routes(self.metrics, self.monitor),
            )
            self._http, self.http_port = await start_http(front, config.host, config.http_port)
        self.tracker.launch(self.supervisor)
        await self.resume.launch(self.supervisor)
        await self.monitor.check()
        self.monitor.launch()
        _log.info(
            "serving gRPC on %s:%d, HTTP on %s:%d, store %s",
            config.host,
            self.grpc_port,
            config.host,
            self.http_port,
            config.store,
        )

    def _expose_samples(self) -> None:
        # Counts the components keep anyway, read at scrape time: free on the hot path.
        self.metrics.sample(
            "lro_tracker_polls",
            "Polls of Databricks entities.",
            lambda: self.tracker.polls,
            counter=True,
        )
        self.metrics.sample(
            "lro_tracker_tracked_operations",
            "Operations this replica's tracker follows.",
            lambda: len(self.tracker.schedule.names()),
            counter=False,
        )
        self.metrics.sample(
            "lro_databricks_rate_limit_waits",
            "Times a Databricks call had to wait for the workspace rate limiter.",
            lambda: self.databricks.limiter.waits,
            counter=True,
        )
        self.metrics.sample(
            "lro_wait_operation_waiters",
            "WaitOperation calls held right now.",
            lambda: self.notifier.waiters,
            counter=False,
        )
        self.metrics.sample(
            "lro_background_loop_restarts",
            "Times a background loop died and was started again.",
            lambda: self.supervisor.restarts,
            counter=True,
        )
        self.metrics.sample(
            "lro_background_loops_down",
            "Background loops that died and wait to be started again.",
            lambda: len(self.supervisor.down),
            counter=False,
        )

    def _bind_grpc(self, server: grpc.aio.Server) -> int:
        address = f"{self.config.host}:{self.config.grpc_port}"
        if not self.config.tls_cert_file:
            return int(server.add_insecure_port(address))
        with (
            open(self.config.tls_cert_file, "rb") as cert,
            open(self.config.tls_key_file, "rb") as key,
        ):
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        return int(server.add_secure_port(address, credentials))

    def _on_change(self, name: str, record: OperationRecord | None) -> None:
        if record is None or record.done:
            self.notifier.notify(name, record)

    async def stop(self, grace: float = 5.0) -> None:
        """Drain in-flight calls for up to ``grace`` seconds, release leases, close."""
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
