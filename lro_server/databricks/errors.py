"""Databricks SDK errors → core errors: the one translation at this boundary.

Errors that prevent a start (a request Databricks refuses) become the matching client
error; throttling and outages that outlived the SDK's own retries become Unavailable, so
callers and the tracker retry instead of failing an operation.

A job, run, cluster, warehouse or pipeline that does not exist is NOT_FOUND, whichever way
Databricks says it: ``404 RESOURCE_DOES_NOT_EXIST``, or (jobs/run-now, clusters/start and
most other POSTs, where the SDK has no override) ``400 INVALID_PARAMETER_VALUE`` with
"Job 123 does not exist." as its message.
"""

from __future__ import annotations

import re

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


#: How Databricks says, in a 400, that the entity a request names does not exist.
_MISSING = re.compile(
    r"\b(job|run|task run|cluster|(sql )?warehouse|endpoint|pipeline|update|instance pool)\b"
    r"[^.]*?\b(does not exist|doesn't exist|was not found|not found)",
    re.IGNORECASE,
)


def names_missing_entity(exc: BaseException) -> bool:
    """Whether a Databricks 400 says that an entity the request names does not exist."""
    return (
        isinstance(exc, dbx.BadRequest)
        and getattr(exc, "error_code", "") in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
        and bool(_MISSING.search(str(exc)))
    )


def translate(exc: BaseException) -> core.LroError:
    """Return the core error for an exception raised by a Databricks call."""
    if isinstance(exc, core.LroError):
        return exc
    for source, mapped in _TABLE:
        if isinstance(exc, source):
            missing = mapped is core.InvalidArgument and names_missing_entity(exc)
            target = core.NotFound if missing else mapped
            code = getattr(exc, "error_code", None) or type(exc).__name__
            message = str(exc) or type(exc).__name__
            # Databricks answered about the work; refused credentials are the server's own
            # trouble (the tracker retries later instead of failing the operation).
            origin = core.Origin.DATABRICKS
            if target is core.Unavailable:
                message = f"Databricks is unavailable: {message}"
            elif target is core.FailedPrecondition and isinstance(exc, dbx.Unauthenticated):
                message = f"Databricks refused the server's credentials: {message}"
                origin = core.Origin.SERVER
            return target(
                message,
                reason=f"DATABRICKS_{code}".upper(),
                metadata={"databricks_error_code": str(code)},
                origin=origin,
            )
    if isinstance(exc, DatabricksError):
        return core.Unknown(
            f"Databricks error: {exc}", reason="DATABRICKS_ERROR", origin=core.Origin.DATABRICKS
        )
    return core.Internal("unexpected error calling Databricks", reason="DATABRICKS_CLIENT_BUG")


def is_transient(error: core.LroError) -> bool:
    """Whether a retry later may succeed (throttling, outage, timeout)."""
    return isinstance(error, core.Unavailable)
