"""Settings → AppConfig: the one translation from user-facing settings to plain values."""

from __future__ import annotations

from lro_server.api.auth import AuthOptions
from lro_server.cli.app import AppConfig, default_replica_id
from lro_server.cli.methods import load_methods
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.cli.settings import Settings
from lro_server.core.errors import InvalidArgument
from lro_server.core.operations import ServiceLimits
from lro_server.databricks.client import DatabricksOptions
from lro_server.http.webhooks import WebhookCredentials


def app_config(settings: Settings) -> AppConfig:
    """Build the application's configuration from settings (and load durable methods).

    Raises:
        InvalidArgument: Authentication is on without an audience, or TLS is half set.
        MethodsError: The durable methods cannot be loaded.
    """
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise InvalidArgument("LRO_TLS_CERT and LRO_TLS_KEY must be set together")
    if bool(settings.webhook_username) != bool(settings.webhook_password):
        raise InvalidArgument("LRO_WEBHOOK_USERNAME and LRO_WEBHOOK_PASSWORD must be set together")
    return AppConfig(
        store=settings.store,
        host=settings.host,
        grpc_port=settings.grpc_port,
        http_port=settings.http_port,
        databricks=DatabricksOptions(
            threads=settings.databricks_threads,
            connections=settings.databricks_connections,
            call_timeout_seconds=settings.databricks_call_timeout_seconds,
            connect_timeout_seconds=settings.databricks_connect_timeout_seconds,
            start_timeout_seconds=settings.databricks_start_timeout_seconds,
            requests_per_second=settings.databricks_requests_per_second,
        ),
        replica_id=settings.replica_id or default_replica_id(),
        lease_seconds=settings.lease_seconds,
        poll_interval_seconds=settings.poll_interval_seconds,
        max_poll_interval_seconds=settings.max_poll_interval_seconds,
        limits=ServiceLimits(
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            page_token_key=settings.page_token_key.encode(),
            max_wait_seconds=settings.max_wait_seconds,
        ),
        max_waiters=settings.max_waiters,
        max_request_bytes=settings.max_request_bytes,
        spanner_threads=settings.spanner_threads,
        sqlite_busy_timeout_seconds=settings.sqlite_busy_timeout_seconds,
        health_check_seconds=settings.health_check_seconds,
        resume=ResumeConfig(
            waiter=settings.waiter,
            workflow=settings.workflow,
            workflows_endpoint=settings.workflows_endpoint,
        ),
        durable_methods=tuple(load_methods(settings.methods)),
        auth=_auth(settings),
        tls_cert_file=str(settings.tls_cert or ""),
        tls_key_file=str(settings.tls_key or ""),
        webhook=(
            WebhookCredentials(settings.webhook_username, settings.webhook_password)
            if settings.webhook_username
            else None
        ),
        webhook_destination_id=settings.webhook_destination_id,
        retention_days=settings.retention_days,
        purge_interval_seconds=settings.purge_interval_seconds,
    )


def _auth(settings: Settings) -> AuthOptions | None:
    """Caller authentication options, or None when auth is off."""
    if not settings.auth:
        return None
    if not settings.auth_audience:
        raise InvalidArgument("LRO_AUTH needs LRO_AUTH_AUDIENCE (the service URL)")
    return AuthOptions(
        audience=settings.auth_audience,
        certs_url=settings.auth_certs_url,
        allowed=frozenset(settings.allowed_principals),
        admins=frozenset(settings.admin_principals),
        waiters=frozenset(settings.waiter_principals),
    )
