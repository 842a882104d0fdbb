"""Every setting of lro-server, read from flags and ``LRO_*`` environment variables.

This is the only module that reads the environment; everything else gets values passed in.
docs/configuration.md is generated from this class (``python -m lro_server.cli.settings``),
and a test fails when the two disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lro_server.cli.client_settings import ClientSettings

#: Default store: a SQLite file under the working directory's var/ folder.
DEFAULT_STORE = "sqlite:///var/lro.db"


class Settings(BaseSettings):
    """Server settings. Each field is read from ``LRO_<NAME>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="LRO_", extra="ignore")

    # --- listening ---
    host: str = Field(
        "127.0.0.1",
        description="Address both fronts bind to (0.0.0.0 for every interface, as in containers).",
    )
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port (0: any free port).")
    http_port: int = Field(
        8080, ge=-1, le=65535, description="HTTP/JSON port (0: any free port; -1 disables it)."
    )
    # --- storage ---
    store: str = Field(
        DEFAULT_STORE,
        description="Operation store: sqlite:///PATH or spanner://projects/P/instances/I/databases/D.",
    )
    spanner_threads: int = Field(
        16, ge=1, le=256, description="Thread pool size for Spanner calls."
    )
    sqlite_busy_timeout_seconds: float = Field(
        2.0,
        ge=0,
        description="How long a SQLite write waits for another process's lock before it "
        "fails with UNAVAILABLE (the wait never blocks other calls).",
    )
    retention_days: int = Field(
        30,
        ge=1,
        description="Days a done operation is kept before it is deleted (Spanner: its row "
        "deletion policy; SQLite: the background sweep).",
    )
    purge_interval_seconds: float = Field(
        600.0,
        gt=0,
        description="Interval of the sweep deleting expired done operations (SQLite store).",
    )
    # --- operations service ---
    default_page_size: int = Field(
        50, ge=1, description="ListOperations page size when 0 is asked."
    )
    max_page_size: int = Field(1000, ge=1, description="Larger page sizes are coerced to this.")
    page_token_key: str = Field(
        "lro-server-page-tokens",
        description="HMAC key that signs page tokens; set the same secret on every replica.",
    )
    max_wait_seconds: float = Field(
        600.0, gt=0, description="Longest a single WaitOperation call is held."
    )
    max_waiters: int = Field(
        20000,
        ge=1,
        description="Concurrent WaitOperation calls beyond which new ones get RESOURCE_EXHAUSTED.",
    )
    max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request accepted on either front."
    )
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long in-flight calls may finish."
    )
    # --- tracking Databricks ---
    replica_id: str = Field(
        "", description="Name of this replica in leases (default: host name and process id)."
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a replica's claim on an operation lasts unless renewed."
    )
    poll_interval_seconds: float = Field(
        5.0, gt=0, description="Initial interval between two polls of one Databricks entity."
    )
    max_poll_interval_seconds: float = Field(
        60.0, gt=0, description="Poll intervals back off up to this while nothing changes."
    )
    databricks_threads: int = Field(
        4,
        ge=1,
        le=512,
        description="Threads for the Databricks SDK's blocking work (resolving the "
        "configuration, refreshing credentials); REST calls run on the event loop.",
    )
    databricks_connections: int = Field(
        32,
        ge=1,
        le=1024,
        description="Most Databricks REST calls in flight at once (kept-alive connections "
        "to the workspace); more wait for a free connection.",
    )
    databricks_requests_per_second: float = Field(
        20.0, gt=0, description="Workspace-wide rate limit of Databricks REST calls."
    )
    databricks_call_timeout_seconds: float = Field(
        60.0, gt=0, description="Budget of one Databricks call, its retries included."
    )
    databricks_connect_timeout_seconds: float = Field(
        3.0,
        gt=0,
        description="Connect timeout of every Databricks call, and read timeout of the SDK's "
        "probe of `/.well-known/databricks-config`.",
    )
    databricks_start_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest a start method waits for Databricks; a start that did not get "
        "through by then is deferred: its operation is returned and the start retried in the "
        "background with the same idempotency token.",
    )
    webhook_username: str = Field(
        "",
        description="User of the basic auth Databricks' webhook destination sends to "
        "POST /databricks/webhooks/jobs (empty: webhook push off).",
    )
    webhook_password: str = Field(
        "", description="Password of that basic auth (set both, or neither)."
    )
    webhook_destination_id: str = Field(
        "",
        description="Databricks notification destination attached (on_start, on_success, "
        "on_failure) to the runs this server submits and the jobs it creates.",
    )
    # --- resume ---
    waiter: Literal["embedded", "workflows"] = Field(
        "embedded", description="Who resumes waiting methods: in-process, or Cloud Workflows."
    )
    workflow: str = Field(
        "", description="Workflow that waits on children: projects/P/locations/L/workflows/W."
    )
    workflows_endpoint: str = Field(
        "",
        description="host:port of the Cloud Workflows executions API (empty: Google's "
        "global endpoint; set a regional endpoint, or a plaintext test stand-in).",
    )
    # --- durable methods ---
    methods: str = Field(
        "",
        description="Modules of durable methods to serve, comma-separated (e.g. "
        "acme.methods); the `lro_server.methods` entry points are loaded too.",
    )
    # --- security ---
    auth: bool = Field(False, description="Require a Google-signed ID token on every call.")
    auth_audience: str = Field("", description="Expected audience of ID tokens.")
    auth_certs_url: str = Field(
        "https://www.googleapis.com/oauth2/v1/certs",
        description="Where the ID tokens' signing certificates are fetched (Google's).",
    )
    allowed_principals: list[str] = Field(
        default_factory=list, description="Emails allowed to call (empty: any valid token)."
    )
    admin_principals: list[str] = Field(
        default_factory=list, description="Emails that see every owner's operations."
    )
    waiter_principals: list[str] = Field(
        default_factory=list, description="Emails allowed to resume methods (the workflow's)."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate for TLS on the gRPC port.")
    tls_key: Path | None = Field(None, description="PEM private key for TLS on the gRPC port.")
    # --- logs, health, tracing ---
    log_level: str = Field("INFO", description="Log level.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="json for Cloud Logging, text for terminals; auto picks by tty."
    )
    log_trace_project: str = Field(
        "",
        description="Google Cloud project in `logging.googleapis.com/trace` "
        "(projects/P/traces/T, which Cloud Logging links to Cloud Trace); empty: bare trace id.",
    )
    health_check_seconds: float = Field(
        1.0,
        gt=0,
        description="Interval of the store pings behind gRPC health and /readyz while the "
        "store answers (while it does not: every 0.25 s; at once when a store call fails).",
    )
    tracing: Literal["off", "otlp", "console"] = Field(
        "off",
        description="OpenTelemetry spans (needs the `otel` extra): otlp exports to "
        "OTEL_EXPORTER_OTLP_ENDPOINT, console prints them.",
    )


def configuration_reference() -> str:
    """Render the configuration reference (docs/configuration.md) from the class."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `lro_server/cli/settings.py` by `python -m lro_server.cli.settings`.",
        "Every setting is read from the environment variable shown; `lro-server serve` flags",
        "override the ones they name. Databricks credentials come from the Databricks SDK's",
        "own variables (`DATABRICKS_HOST`, `DATABRICKS_TOKEN`, profiles).",
        "",
        "| variable | default | description |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        lines.append(f"| `LRO_{name.upper()}` | `{default!r}` | {field.description} |")
    lines += [
        "",
        "## The `lro` client",
        "",
        "Read by `lro` (flags of the same name override them).",
        "",
        "| variable | default | description |",
        "|---|---|---|",
    ]
    for name, field in ClientSettings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        lines.append(f"| `LRO_{name.upper()}` | `{default!r}` | {field.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(configuration_reference())
