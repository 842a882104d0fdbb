"""Reaching Cloud Spanner: store URLs, clients and databases, the one translation of errors.

Every exception google-cloud-spanner (or the transport under it) raises is turned into a
core error by :func:`translated`, and nowhere else:

- transient trouble (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED after the
  transaction runner gave up, connection and timeout errors) becomes ``Unavailable``, so
  clients retry;
- a missing database, table, column or index becomes ``Unavailable`` saying to run
  ``lro-server migrate``: the server is up but its store is not ready yet;
- access problems (PERMISSION_DENIED, UNAUTHENTICATED, missing credentials) become
  ``FailedPrecondition``: retrying will not help until the deployment is fixed;
- any other Spanner error becomes ``Internal``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions
from google.cloud import spanner

from lro_server.core.errors import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    LroError,
    Origin,
    Unavailable,
)

#: URL scheme of this backend.
SCHEME = "spanner"
#: Environment variable the Spanner client library reads to talk to the emulator.
EMULATOR_HOST_ENV = "SPANNER_EMULATOR_HOST"

_URL = re.compile(
    r"^spanner://projects/(?P<project>[a-z0-9][-a-z0-9.:]*[a-z0-9])"
    r"/instances/(?P<instance>[a-z][-a-z0-9]*[a-z0-9])"
    r"/databases/(?P<database>[a-z][-_a-z0-9]*[a-z0-9])$"
)
# Texts by which Spanner says that the schema (not the data) is missing or older than ours.
_SCHEMA_MISSING = re.compile(
    r"Database not found|Table not found|Column not found|Index not found|Unrecognized name"
    r"|Proto type not found",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SpannerUrl:
    """A parsed ``spanner://projects/P/instances/I/databases/D`` store URL."""

    project: str
    instance: str
    database: str

    @property
    def database_path(self) -> str:
        """The database's resource name, ``projects/P/instances/I/databases/D``."""
        return f"projects/{self.project}/instances/{self.instance}/databases/{self.database}"

    def __str__(self) -> str:
        return f"{SCHEME}://{self.database_path}"


def parse_spanner_url(url: str) -> SpannerUrl:
    """Parse a Spanner store URL.

    Raises:
        InvalidArgument: ``url`` is not ``spanner://projects/P/instances/I/databases/D``
            with valid Spanner ids.
    """
    match = _URL.match(url)
    if match is None:
        raise InvalidArgument(
            f"bad Spanner store URL {url!r}: expected "
            "spanner://projects/PROJECT/instances/INSTANCE/databases/DATABASE",
            metadata={"field": "store"},
        )
    return SpannerUrl(match["project"], match["instance"], match["database"])


def emulator_host() -> str | None:
    """The emulator address the Spanner client library will use, if any.

    The library reads ``SPANNER_EMULATOR_HOST`` itself; the store only looks at it to
    allow the emulator-only conveniences (creating the instance in ``migrate``).
    """
    return os.environ.get(EMULATOR_HOST_ENV) or None


def new_client(project: str) -> Any:
    """A Spanner client for ``project`` (Application Default Credentials, or the emulator).

    Raises:
        FailedPrecondition: No credentials could be found.
    """
    with translated(f"projects/{project}"):
        # Typed as Any: google-cloud-spanner is only partly annotated.
        client: Any = spanner.Client(project=project)
        return client


def open_database(url: SpannerUrl, sessions: int) -> Any:
    """The Database ``url`` names, with a pool of ``sessions`` sessions (one per worker).

    With multiplexed sessions, the default on Cloud Spanner, the pool is barely used; with
    the emulator they must be off.
    """
    client = new_client(url.project)
    pool: Any = spanner.BurstyPool  # untyped in google-cloud-spanner
    return client.instance(url.instance).database(url.database, pool=pool(target_size=sessions))


def schema_missing_message(database_path: str) -> str:
    """What to tell an operator whose database or schema is missing."""
    return (
        f"the Spanner database {database_path} or its schema is missing or out of date: "
        f"run `lro-server migrate --store {SCHEME}://{database_path}`"
    )


@contextlib.contextmanager
def translated(resource: str) -> Iterator[None]:
    """Turn Spanner and transport exceptions into core errors (see the module docstring).

    Args:
        resource: The database (or project) path, named in the messages.
    """
    try:
        yield
    except (gexc.GoogleAPIError, grpc.RpcError, auth_exceptions.GoogleAuthError) as exc:
        error = _translate(exc, resource)
        error.origin = Origin.STORE
        raise error from exc
    except (ConnectionError, TimeoutError, concurrent.futures.TimeoutError) as exc:
        raise Unavailable(
            f"Spanner ({resource}) is unreachable: {exc}", origin=Origin.STORE
        ) from exc


def _translate(exc: Exception, resource: str) -> LroError:
    message = _message(exc)
    if isinstance(exc, gexc.NotFound | gexc.InvalidArgument | gexc.FailedPrecondition) and (
        _SCHEMA_MISSING.search(message)
    ):
        return Unavailable(schema_missing_message(resource), reason="STORE_NOT_MIGRATED")
    if isinstance(
        exc,
        gexc.ServiceUnavailable
        | gexc.DeadlineExceeded
        | gexc.TooManyRequests
        | gexc.ResourceExhausted
        | gexc.Aborted
        | gexc.RetryError
        | gexc.Cancelled
        | auth_exceptions.TransportError
        | auth_exceptions.RefreshError,
    ):
        return Unavailable(f"Spanner ({resource}) is unavailable: {message}")
    if isinstance(exc, grpc.RpcError):
        # A raw gRPC error escaped the client library's own mapping (streaming paths).
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return Unavailable(f"Spanner ({resource}) is unavailable: {message}")
    if isinstance(
        exc,
        gexc.PermissionDenied | gexc.Unauthenticated | auth_exceptions.DefaultCredentialsError,
    ):
        return FailedPrecondition(
            f"Spanner ({resource}) refused access: {message}", reason="STORE_ACCESS_DENIED"
        )
    return Internal(f"Spanner ({resource}) failed: {message}")


def _message(exc: Exception) -> str:
    if isinstance(exc, gexc.GoogleAPICallError):
        return str(exc.message or exc)
    return str(exc)
