"""Core error codes → HTTP status codes, and error bodies in Google's JSON error format.

The body is what google-api-core's REST transport parses:
``{"error": {"code": <http>, "message": ..., "status": "NOT_FOUND", "details": [...]}}``,
with the same google.rpc.Status details as the gRPC front (from ``api.errors``).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401  registers ErrorInfo for JSON

from lro_server.api.errors import to_rpc_status
from lro_server.core.errors import Code, LroError

#: The canonical mapping of https://cloud.google.com/apis/design/errors.
HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def error_body(error: LroError, http_status: int | None = None) -> tuple[int, bytes]:
    """HTTP status and JSON body for ``error`` (``http_status`` overrides the mapping, e.g.
    405 for a method a path does not serve)."""
    status = to_rpc_status(error)
    http = http_status or HTTP_STATUS.get(error.code, 500)
    payload: dict[str, Any] = {
        "code": http,
        "message": status.message,
        "status": error.code.name,
        "details": [json_format.MessageToDict(d) for d in status.details],
    }
    return http, json.dumps({"error": payload}).encode()
