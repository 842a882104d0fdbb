"""Resolving the workspace: the SDK's configuration, with a bounded host probe.

The SDK's ``Config()`` reads the unified auth (DATABRICKS_HOST, DATABRICKS_TOKEN, profiles)
and probes ``{host}/.well-known/databricks-config`` over the network before anything else.
With the call timeouts (a minute of retries, 30 s per attempt) an unreachable or silent host
held the first request for two minutes. So the configuration is built with a short probe
budget: the connect timeout, and one second of retries. The calls themselves go through
:mod:`lro_server.databricks.transport`, with their own timeouts.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from databricks.sdk.config import Config

from lro_server.core.errors import FailedPrecondition

#: How to try the server without a workspace: named in every "not configured" message.
#: The token is described, not given: logs mask any ``TOKEN=value`` as a secret.
SIMULATOR_HINT = (
    "set DATABRICKS_HOST and DATABRICKS_TOKEN (or DATABRICKS_CONFIG_PROFILE) for the server, "
    "or try it without a workspace: run `lro-server simulate-databricks` and start the server "
    "with DATABRICKS_HOST=http://127.0.0.1:8765 and any DATABRICKS_TOKEN (the simulator "
    "accepts every token)"
)
#: Retry budget of the host-metadata probe (the SDK takes whole seconds, at least 1).
PROBE_RETRY_SECONDS = 1
_PROBE_SETTINGS = re.compile(r"(retry_timeout_seconds|http_timeout_seconds)=[\d.]+(, )?")


@dataclasses.dataclass(frozen=True, slots=True)
class WorkspaceSettings:
    """What the workspace's configuration is built from.

    Attributes:
        host: Workspace URL; None reads DATABRICKS_HOST / profiles.
        token: Personal access token; None reads DATABRICKS_TOKEN / profiles.
        connect_timeout_seconds: The read timeout of the host-metadata probe.
        call_timeout_seconds: Retry budget of the SDK's own calls after the probe (its
            credential refreshes).
        http_timeout_seconds: Read timeout of those calls.
    """

    host: str | None
    token: str | None
    connect_timeout_seconds: float
    call_timeout_seconds: float
    http_timeout_seconds: float


def build_config(settings: WorkspaceSettings) -> Config:
    """The SDK's configuration of the workspace, its probe bounded (see the module
    docstring).

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
    return config


def _config(settings: WorkspaceSettings) -> Config:
    kwargs: dict[str, Any] = {
        "retry_timeout_seconds": PROBE_RETRY_SECONDS,
        "http_timeout_seconds": settings.connect_timeout_seconds,
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
