"""Core errors → google.rpc.Status with an ErrorInfo detail (AIP-193): the one mapping.

The gRPC front aborts with this status; the HTTP front renders the same status as JSON with
the HTTP code from ``lro_server.http.errors``. Anything that is not an LroError is a bug:
it is logged with its traceback and answered INTERNAL with a generic message. An INTERNAL
that an LroError carries is a bug too, and is logged the same way: every INTERNAL the server
answers has a traceback in its log.
"""

from __future__ import annotations

import logging

from google.rpc import code_pb2, error_details_pb2, status_pb2

from lro_server.core.errors import ERROR_DOMAIN, Code, Internal, LroError

_log = logging.getLogger(__name__)


def as_lro_error(exc: BaseException, *, where: str) -> LroError:
    """Return ``exc`` if it is an LroError; otherwise log it and return a generic Internal.

    Every INTERNAL answer is logged here with its traceback (and the chain of causes).
    """
    if isinstance(exc, LroError):
        if exc.code == Code.INTERNAL:
            _log.error("internal error in %s: %s", where, exc.message, exc_info=exc)
        return exc
    _log.error("unexpected error in %s", where, exc_info=exc)
    return Internal("internal error", reason="INTERNAL")


def to_rpc_status(error: LroError) -> status_pb2.Status:
    """google.rpc.Status of ``error`` with its ErrorInfo."""
    status = status_pb2.Status(code=int(error.code), message=error.message)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
    )
    status.details.add().Pack(info)
    return status


assert int(Code.UNAUTHENTICATED) == code_pb2.UNAUTHENTICATED  # the two numberings agree
