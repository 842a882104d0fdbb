"""The Databricks workspace client: REST calls on the event loop, retried in one place.

Every call goes through :meth:`Databricks.call`, which waits for the workspace-wide rate
limiter (starts and cancels first, see :mod:`lro_server.databricks.limiter`), sends the
request through the workspace's :class:`~lro_server.databricks.transport.HttpTransport`
(aiohttp on the event loop, databricks-sdk's auth and error parsing), makes every retry
decision, and translates errors in one place (:mod:`lro_server.databricks.errors`).

Retries: the transport says which failures are transient (the SDK's own judgement:
throttling, outages, its transient messages; a dropped or refused connection, a timeout);
:meth:`Databricks.call` decides whether to repeat. A 429's Retry-After pauses every call to
the workspace through the shared limiter, and a call that Databricks may already have
applied (the connection dropped after the request was sent) is repeated only when it is
idempotent; a non-idempotent create surfaces as Unavailable and its family looks the
entity up before creating again.

We read raw JSON, not the SDK's typed dataclasses: states stay strings exactly as
Databricks sent them, so values the SDK does not know are still seen (the typed layer
turns them into None), and a run without ``state`` cannot crash us.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from databricks.sdk import errors as sdk_errors
from databricks.sdk.config import Config

from lro_server.core import deadline as call_deadline
from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import LroError, Unavailable
from lro_server.core.metrics import Metrics
from lro_server.databricks.errors import translate
from lro_server.databricks.limiter import RateLimiter
from lro_server.databricks.transport import HttpTransport, Transient
from lro_server.databricks.workspace import WorkspaceSettings, build_config

_log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
#: Longest wait between two retries of a call that gave no Retry-After.
MAX_RETRY_DELAY_SECONDS = 2.0
#: Time kept back from the caller's own deadline, to answer it before it gives up.
DEADLINE_MARGIN_SECONDS = 0.25


@dataclasses.dataclass(frozen=True, slots=True)
class DatabricksOptions:
    """How to reach Databricks (credentials come from the SDK's unified auth).

    Attributes:
        host: Workspace URL; None reads DATABRICKS_HOST / profiles.
        token: Personal access token; None reads DATABRICKS_TOKEN / profiles.
        threads: Threads for the SDK's blocking work: resolving the configuration (the
            host probe) and refreshing credentials. REST calls need none.
        connections: Most REST calls in flight at once (kept-alive connections to the
            workspace); more wait for a free connection.
        call_timeout_seconds: Budget of one call, its retries included, so a throttled call
            cannot stall the tracker.
        http_timeout_seconds: Read timeout of one HTTP attempt.
        connect_timeout_seconds: Connect timeout of one HTTP attempt, and the read timeout
            of the SDK's host-metadata probe.
        start_timeout_seconds: Longest the calls made while answering one RPC (a start) may
            take in all: beyond it the call fails Unavailable, and a start is deferred (its
            operation is returned; the tracker retries with the same idempotency token).
        requests_per_second: Workspace-wide rate limit shared by every call.
    """

    host: str | None = None
    token: str | None = None
    threads: int = 4
    connections: int = 32
    call_timeout_seconds: float = 60.0
    http_timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 3.0
    start_timeout_seconds: float = 5.0
    requests_per_second: float = 20.0


class Databricks:
    """Async facade over one workspace.

    Args:
        options: How to reach it.
        metrics: Where calls are counted.
        clock: Time of the rate limiter, the retry pauses and the calls' budgets.
    """

    def __init__(
        self,
        options: DatabricksOptions,
        *,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options
        self.metrics = metrics or Metrics()
        self.clock: Clock = clock or SystemClock()
        self._pool = ThreadPoolExecutor(options.threads, thread_name_prefix="databricks")
        self.limiter = RateLimiter(options.requests_per_second, clock=self.clock)
        self._config: Config | None = None
        self._building = threading.Lock()
        self._transport: HttpTransport | None = None
        self._connecting = asyncio.Lock()
        self.calls = 0

    def _workspace(self) -> Config:
        # Built once, lazily, in a worker thread: the SDK resolves auth and probes the host
        # over the network on construction (bounded, see databricks.workspace).
        with self._building:
            if self._config is None:
                options = self.options
                self._config = build_config(
                    WorkspaceSettings(
                        host=options.host,
                        token=options.token,
                        connect_timeout_seconds=options.connect_timeout_seconds,
                        call_timeout_seconds=options.call_timeout_seconds,
                        http_timeout_seconds=options.http_timeout_seconds,
                    )
                )
            return self._config

    async def _connection(self) -> HttpTransport:
        """The workspace's transport, made at first use (the configuration off the loop)."""
        transport = self._transport
        if transport is not None:
            return transport
        async with self._connecting:
            if self._transport is None:
                loop = asyncio.get_running_loop()
                config = await loop.run_in_executor(self._pool, self._workspace)
                options = self.options
                self._transport = HttpTransport(
                    config,
                    self._pool,
                    connections=options.connections,
                    connect_timeout=options.connect_timeout_seconds,
                    read_timeout=options.http_timeout_seconds,
                )
            return self._transport

    async def configuration_problem(self) -> LroError | None:
        """Resolve the workspace now; the error that prevents it (None: configured).

        For the startup check: a missing configuration is reported before the first start
        method meets it. Probes the host (bounded) when one is configured.
        """
        try:
            await self._connection()
        except LroError as exc:
            return exc
        return None

    @property
    def host(self) -> str:
        """Workspace URL without a trailing slash (for entity links)."""
        config = self._config
        host = config.host if config is not None else (self.options.host or "")
        return (host or "").rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> JsonDict:
        """One REST call, retried while transient; raises core errors (``databricks.errors``).

        Counted and timed (retries included) in ``lro_databricks_calls`` by endpoint and
        outcome; see :meth:`_call` for the arguments.
        """
        started = time.perf_counter()
        status = "OK"
        try:
            return await self._call(method, path, body=body, query=query, idempotent=idempotent)
        except LroError as exc:
            status = exc.code.name
            raise
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            self.metrics.observe_databricks(
                method.upper(), path, status, time.perf_counter() - started
            )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        idempotent: bool | None,
    ) -> JsonDict:
        """One REST call, retried while transient.

        Args:
            method: HTTP method.
            path: REST path, e.g. ``/api/2.1/clusters/get``.
            body: JSON body.
            query: Query parameters.
            idempotent: Whether repeating the call is harmless (default: only GET). A
                throttled call (429) is always retried, since Databricks refused it; a call
                that may have been applied (dropped connection, 5xx) only when idempotent.
        """
        repeatable = method.upper() == "GET" if idempotent is None else idempotent
        deadline, serving = self._deadline()
        try:
            transport = await self._connection()
        except Exception as exc:
            raise translate(exc) from exc
        clock = self.clock
        attempt = 0
        while True:
            waited = time.perf_counter()
            await self.limiter.acquire()
            self.metrics.rate_limit_wait.add(time.perf_counter() - waited)
            if serving and clock.monotonic() >= deadline:
                raise Unavailable(
                    f"Databricks did not answer {method} {path} within "
                    f"{self.options.start_timeout_seconds:g}s",
                    reason="DATABRICKS_TIMEOUT",
                )
            self.calls += 1
            attempt += 1
            try:
                result = await transport.send(
                    method,
                    path,
                    body=body,
                    query=query,
                    deadline=time.monotonic() + (deadline - clock.monotonic()),
                )
            except Transient as transient:
                cause = transient.cause
                retry_after = _retry_after(cause)
                if retry_after:
                    self.limiter.pause(retry_after)
                refused = isinstance(cause, sdk_errors.TooManyRequests)
                delay = retry_after or min(MAX_RETRY_DELAY_SECONDS, 0.1 * 2**attempt)
                if (repeatable or refused) and clock.monotonic() + delay < deadline:
                    if not retry_after:
                        await clock.sleep(delay)
                    _log.debug("retrying %s %s after %s", method, path, type(cause).__name__)
                    continue
                raise translate(cause) from cause
            except Exception as exc:
                retry_after = _retry_after(exc)
                if retry_after:
                    self.limiter.pause(retry_after)
                raise translate(exc) from exc
            return result if isinstance(result, dict) else {}

    def _deadline(self) -> tuple[float, bool]:
        """When the call must be over (on ``clock.monotonic``), and whether it serves an RPC
        (a start) right now."""
        now = self.clock.monotonic()
        deadline = now + self.options.call_timeout_seconds
        left = call_deadline.remaining()
        if left is None:
            return deadline, False
        budget = min(self.options.start_timeout_seconds, left - DEADLINE_MARGIN_SECONDS)
        return min(deadline, now + max(0.0, budget)), True

    async def close(self) -> None:
        """Close the connections and stop the thread pool (pending calls finish)."""
        if self._transport is not None:
            await self._transport.close()
            self._transport = None
        self._pool.shutdown(wait=False, cancel_futures=True)


def _retry_after(exc: BaseException) -> float:
    """Retry-After seconds of a 429/503 answer (0 when absent)."""
    value = getattr(exc, "retry_after_secs", None)
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
