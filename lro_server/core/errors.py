"""The error classes of lro-server: one per canonical code, each carrying that code.

Every layer raises these; each boundary translates them in exactly one place
(``api.errors`` to gRPC status, ``http.errors`` to HTTP, ``databricks.errors`` from the SDK).

    LroError
    ├── Cancelled            (1)
    ├── Unknown              (2)
    ├── InvalidArgument      (3)
    ├── DeadlineExceeded     (4)
    ├── NotFound             (5)
    ├── AlreadyExists        (6)
    ├── PermissionDenied     (7)
    ├── ResourceExhausted    (8)
    ├── FailedPrecondition   (9)
    │   └── OperationDone         a done operation cannot change (compare-and-set)
    ├── Aborted              (10)  compare-and-set conflicts
    ├── OutOfRange           (11)
    ├── Unimplemented        (12)
    ├── Internal             (13)
    ├── Unavailable          (14)  transient: clients retry
    └── Unauthenticated      (16)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import ClassVar

#: The ErrorInfo domain of every error this service reports (AIP-193).
ERROR_DOMAIN = "lro.databricks.v1"


class Origin(enum.Enum):
    """Where an error came from, set by the boundary that translated it.

    Callers that must react differently to a store's answer and to Databricks' answer (the
    tracker: a lost compare-and-set race is retried, a refused Databricks call fails the
    operation) ask the error, never its reason text.
    """

    #: Raised by lro-server itself (validation, invariants).
    SERVER = "server"
    #: Translated from the operation store (SQLite, Spanner, in-memory).
    STORE = "store"
    #: Translated from a Databricks call.
    DATABRICKS = "databricks"
    #: Translated from a waiter (e.g. the Cloud Workflows executions API).
    WAITER = "waiter"


class Code(enum.IntEnum):
    """Canonical codes, numbered as in google.rpc.Code."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class LroError(Exception):
    """Root of all lro-server errors.

    Args:
        message: Developer-facing text, safe to show to the caller.
        reason: UPPER_SNAKE_CASE ErrorInfo reason; defaults to the class's.
        metadata: ErrorInfo metadata (string to string), e.g. the offending field.
        origin: Where the error came from (set by the boundary that translated it).
    """

    code: ClassVar[Code] = Code.UNKNOWN
    default_reason: ClassVar[str] = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        origin: Origin = Origin.SERVER,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.origin = origin


class Cancelled(LroError):
    """The work was cancelled."""

    code = Code.CANCELLED
    default_reason = "CANCELLED"


class Unknown(LroError):
    """An error without a better code."""

    code = Code.UNKNOWN
    default_reason = "UNKNOWN"


class InvalidArgument(LroError):
    """The request is malformed, whatever the state of the system."""

    code = Code.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class DeadlineExceeded(LroError):
    """The work did not finish in time."""

    code = Code.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class NotFound(LroError):
    """The named resource does not exist (or is not visible to the caller)."""

    code = Code.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(LroError):
    """The resource to create exists already."""

    code = Code.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class PermissionDenied(LroError):
    """The caller is known but may not do this."""

    code = Code.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(LroError):
    """A quota or capacity limit was reached."""

    code = Code.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class FailedPrecondition(LroError):
    """The system is not in a state that allows the request."""

    code = Code.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class OperationDone(FailedPrecondition):
    """The operation is done, and a done operation never changes again.

    A compare-and-set that loses to the write that finished the operation raises this (not
    Aborted): re-reading shows the final record, and there is nothing left to retry.
    """

    default_reason = "OPERATION_DONE"


class Aborted(LroError):
    """A concurrent change won; re-read and retry (compare-and-set conflict)."""

    code = Code.ABORTED
    default_reason = "CONCURRENT_MODIFICATION"


class OutOfRange(LroError):
    """A value is outside the valid range."""

    code = Code.OUT_OF_RANGE
    default_reason = "OUT_OF_RANGE"


class Unimplemented(LroError):
    """The method or feature is not implemented."""

    code = Code.UNIMPLEMENTED
    default_reason = "UNIMPLEMENTED"


class Internal(LroError):
    """A bug: an invariant was broken."""

    code = Code.INTERNAL
    default_reason = "INTERNAL"


class Unavailable(LroError):
    """A dependency is temporarily unavailable; the caller may retry."""

    code = Code.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class Unauthenticated(LroError):
    """The caller did not present valid credentials."""

    code = Code.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


_BY_CODE: dict[Code, type[LroError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        Unauthenticated,
    )
}


def error_for_code(code: int, message: str, *, reason: str | None = None) -> LroError:
    """Build the error class that carries ``code`` (Unknown for codes without a class)."""
    try:
        cls = _BY_CODE[Code(code)]
    except (ValueError, KeyError):
        cls = Unknown
    return cls(message, reason=reason)
