"""Databricks REST calls on the event loop: aiohttp, with databricks-sdk's auth and errors.

One :class:`HttpTransport` per workspace: one aiohttp connection pool (HTTP keep-alive, at
most ``connections`` calls in flight; more wait for a connection), made on the event loop,
without a thread per call. What databricks-sdk is for is kept:

- **auth**: the SDK's ``Config`` (unified auth: DATABRICKS_HOST/TOKEN, profiles, OAuth)
  produces the headers; ``Config.authenticate()`` may refresh a token over the network, so
  it runs in a worker thread, at most every :data:`AUTH_REFRESH_SECONDS` (and at once after
  a 401), and calls in between use the headers it gave;
- **host**: the SDK's resolution (scheme added, profile's host) is the base URL;
- **errors**: an error answer goes through the SDK's own parser (its deserializers, the
  Retry-After customizer, the per-endpoint overrides), so callers see the same
  ``DatabricksError`` classes as before; the SDK's own judgement of what is transient
  (throttling with Retry-After, its list of transient messages) decides what is retried.

Proxy and CA settings are read from the environment once, for the workspace host, as
``requests`` would (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE keep their meaning).

:meth:`HttpTransport.send` returns the answer's JSON or raises: :class:`Transient` around a
failure a retry may cure (the caller, ``Databricks.call``, decides whether to retry), or
the error itself (a ``DatabricksError``, ``ConnectionError``, ``TimeoutError``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

import aiohttp
import certifi
import requests
import requests.structures
import requests.utils
from databricks.sdk._base_client import _BaseClient
from databricks.sdk.config import Config
from databricks.sdk.core import _AddDebugErrorCustomizer
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.errors.parser import _Parser

_log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
#: Longest time the headers of ``Config.authenticate()`` are reused; an OAuth token source
#: refreshes its token ahead of expiry when asked, so asking this often keeps it fresh.
AUTH_REFRESH_SECONDS = 10.0
#: Shortest total time given to an attempt whose call is out of time (it then fails fast).
MIN_ATTEMPT_SECONDS = 0.05


class Transient(Exception):
    """A failure a retry may cure: throttling, an outage, a dropped or refused connection,
    a timeout. ``cause`` is the error itself (a DatabricksError, ConnectionError or
    TimeoutError); whether the call may be repeated is the caller's decision."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class HttpTransport:
    """REST calls to one workspace over one aiohttp connection pool.

    Args:
        config: The SDK's resolved configuration (host and auth).
        pool: Threads for the SDK's blocking work (refreshing credentials).
        connections: Most calls in flight at once (pooled, kept-alive connections).
        connect_timeout: Seconds to connect (and finish TLS), per attempt.
        read_timeout: Seconds to wait for a chunk of the answer, per attempt.
    """

    def __init__(
        self,
        config: Config,
        pool: Executor,
        *,
        connections: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.host = str(config.host or "").rstrip("/")
        self._config = config
        self._pool = pool
        self._connections = connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._user_agent = str(config.user_agent)
        self._parser = _Parser(extra_error_customizers=[_AddDebugErrorCustomizer(config)])
        settings = requests.Session().merge_environment_settings(self.host, {}, None, None, None)
        self._proxy: str | None = requests.utils.select_proxy(self.host, settings["proxies"])
        self._ssl = _ssl_context(self.host, settings["verify"])
        self._session: aiohttp.ClientSession | None = None
        self._auth: dict[str, str] = {}
        self._auth_until = 0.0
        self._auth_lock = asyncio.Lock()

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        deadline: float,
    ) -> Any:
        """One attempt of ``method path``, over by ``deadline`` (``time.monotonic``)."""
        headers = {**await self._headers(), "User-Agent": self._user_agent}
        data = None
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        url = self.host + path
        timeout = aiohttp.ClientTimeout(
            total=max(MIN_ATTEMPT_SECONDS, deadline - time.monotonic()),
            sock_connect=self._connect_timeout,
            sock_read=self._read_timeout,
        )
        try:
            async with self._open().request(
                method,
                url,
                params=_query(query),
                data=data,
                headers=headers,
                proxy=self._proxy,
                ssl=self._ssl,
                timeout=timeout,
            ) as answer:
                content = await answer.read()
                if answer.status < 300 and answer.url.path != "/login.html":
                    return json.loads(content) if content.strip() else {}
                error = self._parser.get_api_error(_response(method, url, answer, content))
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors
            raise Transient(TimeoutError(f"no answer to {method} {path} in time")) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            failure = ConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}")
            raise Transient(failure) from exc
        if error is None:  # a success the parser found nothing wrong with
            return json.loads(content) if content.strip() else {}
        if answer.status == 401:
            self._auth_until = 0.0  # the next call asks for fresh credentials
        if _transient(error):
            raise Transient(error)
        raise error

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, on the loop that uses it (aiohttp binds a session to its loop).
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections, limit_per_host=self._connections, keepalive_timeout=30
            )
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=True
            )
        return self._session

    async def _headers(self) -> dict[str, str]:
        """The SDK's auth headers, asked of it in a worker thread now and then."""
        if time.monotonic() < self._auth_until:
            return self._auth
        async with self._auth_lock:
            if time.monotonic() >= self._auth_until:
                loop = asyncio.get_running_loop()
                headers = await loop.run_in_executor(self._pool, self._config.authenticate)
                self._auth = dict(headers)
                self._auth_until = time.monotonic() + AUTH_REFRESH_SECONDS
        return self._auth


def _transient(error: DatabricksError) -> bool:
    """The SDK's judgement: throttled (429/503 with Retry-After) or a message it knows as
    transient."""
    if getattr(error, "retry_after_secs", None) is not None:
        return True
    return _BaseClient._is_retryable(error) is not None


def _query(query: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Query parameters as the SDK sends them: booleans as true/false, nested objects
    flattened (``a.b=1``), lists repeated."""
    if not query:
        return None
    fixed: Mapping[str, Any] = _BaseClient._fix_query_string(dict(query)) or {}
    out: list[tuple[str, str]] = []
    for key, value in fixed.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            out.append((key, "true" if item is True else "false" if item is False else str(item)))
    return out


def _ssl_context(host: str, verify: Any) -> ssl.SSLContext | bool:
    """TLS as ``requests`` would verify it (its CA bundle, or REQUESTS_CA_BUNDLE)."""
    if not host.startswith("https://"):
        return True  # plain HTTP: aiohttp ignores it
    if verify is False:
        return False
    cafile = verify if isinstance(verify, str) else certifi.where()
    return ssl.create_default_context(cafile=cafile)


def _response(
    method: str, url: str, answer: aiohttp.ClientResponse, content: bytes
) -> requests.Response:
    """The answer as the SDK's error parser takes it (a ``requests.Response``)."""
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason or ""
    response.url = str(answer.url)
    response.headers = requests.structures.CaseInsensitiveDict(answer.headers)
    response._content = content  # what requests itself fills in
    response.request = requests.Request(method, url).prepare()
    return response
