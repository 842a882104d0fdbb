"""The Databricks workspace client: REST calls through databricks-sdk, off the event loop.

Every call goes through :meth:`Databricks.call`, which runs the SDK in a bounded thread pool,
waits for the workspace-wide rate limiter, and translates errors in one place.

Retries are made by :meth:`Databricks.call`, not inside the SDK: the SDK still judges which
failures are transient, but when it would sleep and retry, the clock we give it declines
(``_DecliningClock``) and hands the failure back. So a 429's Retry-After pauses every call to
the workspace through the shared limiter (not one thread), and a call that Databricks may
already have applied (the connection dropped after the request was sent) is repeated only
when it is idempotent; a non-idempotent create surfaces as Unavailable and its family looks
the entity up before creating again.
We use the SDK's ``ApiClient.do`` (its auth, retries and error parsing) with raw JSON, not
its typed dataclasses: states stay strings exactly as Databricks sent them, so values the SDK
does not know are still seen (the typed layer turns them into None), and a run without
``state`` cannot crash us.
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

from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.clock import Clock as SdkClock

from lro_server.core import deadline as call_deadline
from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import LroError, Unavailable
from lro_server.core.metrics import Metrics
from lro_server.databricks.errors import translate
from lro_server.databricks.limiter import RateLimiter
from lro_server.databricks.workspace import ATTEMPT, WorkspaceSettings, build_workspace

_log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
#: Longest wait between two retries of a call that gave no Retry-After.
MAX_RETRY_DELAY_SECONDS = 2.0
#: Time kept back from the caller's own deadline, to answer it before it gives up.
DEADLINE_MARGIN_SECONDS = 0.25


class _RetryDeclined(Exception):
    """Raised by the SDK's retry loop when it wants to sleep: the failure was transient."""


class _DecliningClock(SdkClock):
    """The SDK's clock: real time, but never sleeps before a retry (``call`` retries)."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        # Called inside the SDK's `except` block: the failure is this exception's __context__.
        raise _RetryDeclined(seconds)


class _Transient(Exception):
    """A failure the SDK judged transient (throttling, outage, dropped connection)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclasses.dataclass(frozen=True, slots=True)
class DatabricksOptions:
    """How to reach Databricks (credentials come from the SDK's unified auth).

    Attributes:
        host: Workspace URL; None reads DATABRICKS_HOST / profiles.
        token: Personal access token; None reads DATABRICKS_TOKEN / profiles.
        threads: Size of the thread pool for REST calls.
        call_timeout_seconds: Retry budget of one call (SDK ``retry_timeout_seconds``), so a
            throttled call cannot stall the tracker for the SDK's default 300 s.
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
    threads: int = 32
    call_timeout_seconds: float = 60.0
    http_timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 3.0
    start_timeout_seconds: float = 5.0
    requests_per_second: float = 20.0


class Databricks:
    """Async facade over one workspace."""

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
        self._client: WorkspaceClient | None = None
        self._building = threading.Lock()
        self.calls = 0

    def _workspace(self) -> WorkspaceClient:
        # Built once, lazily, in a worker thread: the SDK resolves auth and probes the host
        # over the network on construction (bounded, see databricks.workspace).
        with self._building:
            if self._client is None:
                options = self.options
                self._client = build_workspace(
                    WorkspaceSettings(
                        host=options.host,
                        token=options.token,
                        call_timeout_seconds=options.call_timeout_seconds,
                        http_timeout_seconds=options.http_timeout_seconds,
                        connect_timeout_seconds=options.connect_timeout_seconds,
                        clock=_DecliningClock(),
                    )
                )
            return self._client

    async def configuration_problem(self) -> LroError | None:
        """Build the workspace client now; the error that prevents it (None: configured).

        For the startup check: a missing configuration is reported before the first start
        method meets it. Probes the host (bounded) when one is configured.
        """
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._workspace)
        except LroError as exc:
            return exc
        return None

    @property
    def host(self) -> str:
        """Workspace URL without a trailing slash (for entity links)."""
        client = self._client
        host = client.config.host if client is not None else (self.options.host or "")
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
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            waited = time.perf_counter()
            await self.limiter.acquire()
            self.metrics.rate_limit_wait.observe(time.perf_counter() - waited)
            if serving and self.clock.monotonic() >= deadline:
                raise Unavailable(
                    f"Databricks did not answer {method} {path} within "
                    f"{self.options.start_timeout_seconds:g}s",
                    reason="DATABRICKS_TIMEOUT",
                )
            self.calls += 1
            attempt += 1
            try:
                result = await loop.run_in_executor(
                    self._pool,
                    self._do,
                    method,
                    path,
                    dict(body) if body is not None else None,
                    dict(query) if query is not None else None,
                    deadline,
                )
            except _Transient as transient:
                cause = transient.cause
                retry_after = _retry_after(cause)
                if retry_after:
                    self.limiter.pause(retry_after)
                refused = isinstance(cause, sdk_errors.TooManyRequests)
                delay = retry_after or min(MAX_RETRY_DELAY_SECONDS, 0.1 * 2**attempt)
                if (repeatable or refused) and self.clock.monotonic() + delay < deadline:
                    if not retry_after:
                        await self.clock.sleep(delay)
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
        """When the call must be over, and whether it serves an RPC (a start) right now."""
        now = self.clock.monotonic()
        deadline = now + self.options.call_timeout_seconds
        left = call_deadline.remaining()
        if left is None:
            return deadline, False
        budget = min(self.options.start_timeout_seconds, left - DEADLINE_MARGIN_SECONDS)
        return min(deadline, now + max(0.0, budget)), True

    def _do(
        self,
        method: str,
        path: str,
        body: JsonDict | None,
        query: JsonDict | None,
        deadline: float,
    ) -> Any:
        ATTEMPT.deadline = deadline
        try:
            return self._workspace().api_client.do(method, path, body=body, query=query)
        except _RetryDeclined as declined:
            cause = declined.__context__
            if cause is None:  # pragma: no cover - the SDK sleeps only after a failure
                raise
            raise _Transient(cause) from cause
        finally:
            ATTEMPT.deadline = None

    async def close(self) -> None:
        """Stop the thread pool (pending calls finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _retry_after(exc: BaseException) -> float:
    """Retry-After seconds of a 429/503 answer (0 when absent)."""
    value = getattr(exc, "retry_after_secs", None)
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
