"""The Databricks workspace client: REST calls through databricks-sdk, off the event loop.

Every call goes through :meth:`Databricks.call`, which runs the SDK in a bounded thread pool,
waits for the workspace-wide rate limiter, and translates errors in one place.
We use the SDK's ``ApiClient.do`` (its auth, retries and error parsing) with raw JSON, not
its typed dataclasses: states stay strings exactly as Databricks sent them, so values the SDK
does not know are still seen (the typed layer turns them into None), and a run without
``state`` cannot crash us.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from lro_server.core.errors import FailedPrecondition
from lro_server.databricks.errors import translate

_log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class DatabricksOptions:
    """How to reach Databricks (credentials come from the SDK's unified auth).

    Attributes:
        host: Workspace URL; None reads DATABRICKS_HOST / profiles.
        token: Personal access token; None reads DATABRICKS_TOKEN / profiles.
        threads: Size of the thread pool for REST calls.
        call_timeout_seconds: Retry budget of one call (SDK ``retry_timeout_seconds``), so a
            throttled call cannot stall the tracker for the SDK's default 300 s.
        http_timeout_seconds: Timeout of one HTTP attempt.
        requests_per_second: Workspace-wide rate limit shared by every call.
    """

    host: str | None = None
    token: str | None = None
    threads: int = 32
    call_timeout_seconds: float = 60.0
    http_timeout_seconds: float = 30.0
    requests_per_second: float = 20.0


class RateLimiter:
    """Token bucket shared by all calls to one workspace; a 429 pauses everybody."""

    def __init__(self, per_second: float, burst: float | None = None) -> None:
        self._rate = per_second
        self._burst = burst if burst is not None else max(1.0, per_second)
        self._tokens = self._burst
        self._updated = time.monotonic()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waits = 0

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (Retry-After of a 429)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def acquire(self) -> None:
        """Wait for a token."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self._paused_until:
                    self.waits += 1
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                self.waits += 1
                await asyncio.sleep((1 - self._tokens) / self._rate)


class Databricks:
    """Async facade over one workspace."""

    def __init__(self, options: DatabricksOptions) -> None:
        self.options = options
        self._pool = ThreadPoolExecutor(options.threads, thread_name_prefix="databricks")
        self.limiter = RateLimiter(options.requests_per_second)
        self._client: WorkspaceClient | None = None
        self.calls = 0

    def _workspace(self) -> WorkspaceClient:
        # Built lazily in a worker thread: the SDK resolves auth and fetches
        # /.well-known/databricks-config over the network on construction.
        if self._client is None:
            kwargs: dict[str, Any] = {
                "retry_timeout_seconds": int(max(1, self.options.call_timeout_seconds)),
                "http_timeout_seconds": int(max(1, self.options.http_timeout_seconds)),
            }
            if self.options.host:
                kwargs["host"] = self.options.host
            if self.options.token:
                kwargs["token"] = self.options.token
            config = Config(**kwargs)
            if config.token:
                # With DATABRICKS_CLIENT_ID/SECRET also set, the SDK would pick OAuth.
                config = Config(auth_type="pat", **kwargs)
            if not config.host:
                raise FailedPrecondition(
                    "Databricks is not configured: set DATABRICKS_HOST and DATABRICKS_TOKEN",
                    reason="DATABRICKS_NOT_CONFIGURED",
                )
            self._client = WorkspaceClient(config=config)
        return self._client

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
    ) -> JsonDict:
        """One REST call; raises core errors (see ``databricks.errors``)."""
        await self.limiter.acquire()
        self.calls += 1
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._pool,
                self._do,
                method,
                path,
                dict(body) if body is not None else None,
                dict(query) if query is not None else None,
            )
        except Exception as exc:
            retry_after = getattr(exc, "retry_after_secs", None)
            if retry_after:
                self.limiter.pause(float(retry_after))
            raise translate(exc) from exc
        return result if isinstance(result, dict) else {}

    def _do(self, method: str, path: str, body: JsonDict | None, query: JsonDict | None) -> Any:
        return self._workspace().api_client.do(method, path, body=body, query=query)

    async def close(self) -> None:
        """Stop the thread pool (pending calls finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
