"""Building the SDK's WorkspaceClient: configuration, bounded probes, a tuned HTTP session.

The SDK's ``Config()`` reads the unified auth (DATABRICKS_HOST, DATABRICKS_TOKEN, profiles)
and probes ``{host}/.well-known/databricks-config`` over the network before anything else.
With the call timeouts it is given (a minute of retries, 30 s per attempt) an unreachable or
silent host held the first request for two minutes. So the configuration is built with a
short probe budget and only then given the real call timeouts; every attempt gets a connect
timeout, and a read timeout no later than the deadline of the call it belongs to
(:data:`ATTEMPT` is set by the caller in the thread that sends the request).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from typing import Any

import requests
import requests.adapters
from databricks.sdk import WorkspaceClient
from databricks.sdk.clock import Clock as SdkClock
from databricks.sdk.config import Config

from lro_server.core.errors import FailedPrecondition

#: How to try the server without a workspace: named in every "not configured" message.
SIMULATOR_HINT = (
    "set DATABRICKS_HOST and DATABRICKS_TOKEN (or DATABRICKS_CONFIG_PROFILE) for the server, "
    "or try it without a workspace: run `lro-server simulate-databricks` and start the server "
    "with DATABRICKS_HOST=http://127.0.0.1:8765 DATABRICKS_TOKEN=dev"
)
#: Retry budget of the host-metadata probe (the SDK takes whole seconds, at least 1).
PROBE_RETRY_SECONDS = 1
#: Shortest read timeout given to an attempt whose call is out of time (it then fails fast).
MIN_READ_SECONDS = 0.05
_PROBE_SETTINGS = re.compile(r"(retry_timeout_seconds|http_timeout_seconds)=[\d.]+(, )?")


@dataclasses.dataclass(frozen=True, slots=True)
class WorkspaceSettings:
    """What the workspace client is built from.

    Attributes:
        host: Workspace URL; None reads DATABRICKS_HOST / profiles.
        token: Personal access token; None reads DATABRICKS_TOKEN / profiles.
        call_timeout_seconds: Retry budget of one call (SDK ``retry_timeout_seconds``).
        http_timeout_seconds: Read timeout of one attempt.
        connect_timeout_seconds: Connect timeout of one attempt, and the read timeout of
            the host-metadata probe.
        clock: The SDK's clock (the caller's retry policy).
    """

    host: str | None
    token: str | None
    call_timeout_seconds: float
    http_timeout_seconds: float
    connect_timeout_seconds: float
    clock: SdkClock


class _Attempt(threading.local):
    """The deadline (``time.monotonic``) of the call the current thread sends, if any."""

    deadline: float | None = None


#: Set around each SDK call by the thread making it (see ``Databricks._do``).
ATTEMPT = _Attempt()


def build_workspace(settings: WorkspaceSettings) -> WorkspaceClient:
    """A WorkspaceClient whose probe and attempts are bounded (see the module docstring).

    Blocking (it may probe the host): call it off the event loop.

    Raises:
        FailedPrecondition: Databricks is not configured (no host, no credentials), with
            the SDK's own reason.
    """
    config = _config(settings)
    if not config.host:
        raise FailedPrecondition(
            f"Databricks is not configured: no workspace host; {SIMULATOR_HINT}",
            reason="DATABRICKS_NOT_CONFIGURED",
        )
    # The probe is over: from here on, the calls' own budgets.
    config.retry_timeout_seconds = int(max(1, settings.call_timeout_seconds))
    config.http_timeout_seconds = int(max(1, settings.http_timeout_seconds))
    client = WorkspaceClient(config=config)
    session = _session(client)
    if session is not None:
        _pin_environment(session, config.host)
        _bound_attempts(session, settings.connect_timeout_seconds)
    return client


def _config(settings: WorkspaceSettings) -> Config:
    kwargs: dict[str, Any] = {
        "retry_timeout_seconds": PROBE_RETRY_SECONDS,
        "http_timeout_seconds": settings.connect_timeout_seconds,
        "clock": settings.clock,
    }
    if settings.host:
        kwargs["host"] = settings.host
    if settings.token:
        kwargs["token"] = settings.token
    try:
        config = Config(**kwargs)
        if config.token and config.auth_type != "pat":
            # With DATABRICKS_CLIENT_ID/SECRET also set, the SDK would pick OAuth.
            config = Config(auth_type="pat", **kwargs)
        return config
    except ValueError as exc:
        if "more than one authorization method" in str(exc) and "pat" in str(exc):
            try:
                return Config(auth_type="pat", **kwargs)
            except ValueError as again:
                exc = again
        reason = _PROBE_SETTINGS.sub("", str(exc)).replace("Config: .", "").strip()
        raise FailedPrecondition(
            f"Databricks is not configured: {reason}; {SIMULATOR_HINT}",
            reason="DATABRICKS_NOT_CONFIGURED",
        ) from exc


def _session(client: WorkspaceClient) -> requests.Session | None:
    base = getattr(client.api_client, "_api_client", None)
    session = getattr(base, "_session", None)
    return session if isinstance(session, requests.Session) else None


def _pin_environment(session: requests.Session, host: str) -> None:
    """Read once what ``requests`` would read from the environment on every call.

    With ``trust_env`` on, each request walks the environment for proxies and NO_PROXY and
    for a CA bundle: ~100 µs holding the GIL, about 7% of an SDK call's CPU. Every call of
    this client goes to one host, so the answer is the same each time: resolve it for that
    host now (HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE keep their meaning) and stop the
    per-call lookup. Should a later SDK keep its session elsewhere, nothing changes.
    """
    settings = session.merge_environment_settings(host, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.trust_env = False


class _BoundedAdapter(requests.adapters.HTTPAdapter):
    """Sends each attempt with a connect timeout and a read timeout within its deadline."""

    def __init__(self, connect_timeout: float, like: requests.adapters.BaseAdapter | None):
        super().__init__(
            pool_connections=getattr(like, "_pool_connections", 20),
            pool_maxsize=getattr(like, "_pool_maxsize", 20),
            pool_block=getattr(like, "_pool_block", True),
        )
        self.connect_timeout = connect_timeout

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        **kw: Any,
    ) -> requests.Response:
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        deadline = ATTEMPT.deadline
        if deadline is not None:
            left = max(MIN_READ_SECONDS, deadline - time.monotonic())
            read = left if read is None else min(float(read), left)
        connect = self.connect_timeout if read is None else min(self.connect_timeout, read)
        return super().send(request, stream=stream, timeout=(connect, read), **kw)


def _bound_attempts(session: requests.Session, connect_timeout: float) -> None:
    """Mount :class:`_BoundedAdapter` for both schemes (the SDK mounts only https)."""
    for prefix in ("https://", "http://"):
        session.mount(prefix, _BoundedAdapter(connect_timeout, session.adapters.get(prefix)))
