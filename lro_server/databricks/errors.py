"""Databricks SDK errors → core errors: the one translation at this boundary.

Errors that prevent a start (a request Databricks refuses) become the matching client
error; throttling and outages that outlived the SDK's own retries become Unavailable, so
callers and the tracker retry instead of failing an operation.
"""

from __future__ import annotations

import requests
from databricks.sdk import errors as dbx
from databricks.sdk.errors.base import DatabricksError

from lro_server.core import errors as core

# Most specific first: isinstance picks the first match.
_TABLE: tuple[tuple[type[BaseException], type[core.LroError]], ...] = (
    (dbx.InvalidState, core.FailedPrecondition),
    (dbx.BadRequest, core.InvalidArgument),
    (dbx.NotFound, core.NotFound),
    (dbx.ResourceAlreadyExists, core.AlreadyExists),
    (dbx.AlreadyExists, core.AlreadyExists),
    (dbx.ResourceConflict, core.FailedPrecondition),
    (dbx.PermissionDenied, core.PermissionDenied),
    # The server's own Databricks credentials were refused: not the caller's fault.
    (dbx.Unauthenticated, core.FailedPrecondition),
    (dbx.TooManyRequests, core.Unavailable),
    (dbx.TemporarilyUnavailable, core.Unavailable),
    (dbx.DeadlineExceeded, core.Unavailable),
    (dbx.NotImplemented, core.Unimplemented),
    (dbx.InternalError, core.Unavailable),
    (dbx.Cancelled, core.Unavailable),
    (TimeoutError, core.Unavailable),
    (requests.RequestException, core.Unavailable),
    (ConnectionError, core.Unavailable),
)


def translate(exc: BaseException) -> core.LroError:
    """Return the core error for an exception raised by a Databricks call."""
    if isinstance(exc, core.LroError):
        return exc
    for source, target in _TABLE:
        if isinstance(exc, source):
            code = getattr(exc, "error_code", None) or type(exc).__name__
            message = str(exc) or type(exc).__name__
            if target is core.Unavailable:
                message = f"Databricks is unavailable: {message}"
            elif target is core.FailedPrecondition and isinstance(exc, dbx.Unauthenticated):
                message = f"Databricks refused the server's credentials: {message}"
            return target(
                message,
                reason=f"DATABRICKS_{code}".upper(),
                metadata={"databricks_error_code": str(code)},
            )
    if isinstance(exc, DatabricksError):
        return core.Unknown(f"Databricks error: {exc}", reason="DATABRICKS_ERROR")
    return core.Internal("unexpected error calling Databricks", reason="DATABRICKS_CLIENT_BUG")


def is_transient(error: core.LroError) -> bool:
    """Whether a retry later may succeed (throttling, outage, timeout)."""
    return isinstance(error, core.Unavailable)
