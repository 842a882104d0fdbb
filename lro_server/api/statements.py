"""lro.databricks.v1.Statements handlers: validate, describe the work, start an operation."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server._proto.lro.databricks.v1 import statements_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import require
from lro_server.api.starter import Starter
from lro_server.core.operations import OperationsService

SERVICE = "lro.databricks.v1.Statements"
#: Dispositions and formats of the Statement Execution API.
DISPOSITIONS = ("", "INLINE", "EXTERNAL_LINKS")
FORMATS = ("", "JSON_ARRAY", "ARROW_STREAM", "CSV")
#: Largest statement text Databricks accepts (16 MiB).
MAX_STATEMENT_BYTES = 16 * 1024 * 1024


class StatementsApi:
    """Databricks SQL statements as operations."""

    def __init__(self, service: OperationsService) -> None:
        self._starter = Starter(service, SERVICE, "statements")

    async def ExecuteStatement(
        self, request: statements_pb2.ExecuteStatementRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Execute a statement (POST /api/2.0/sql/statements) and follow it."""
        require(bool(request.warehouse_id), "warehouse_id", "is required")
        require(bool(request.statement.strip()), "statement", "is required")
        require(
            len(request.statement.encode()) <= MAX_STATEMENT_BYTES,
            "statement",
            "must be at most 16 MiB",
        )
        require(request.row_limit >= 0, "row_limit", "must not be negative")
        require(request.byte_limit >= 0, "byte_limit", "must not be negative")
        require(
            request.disposition in DISPOSITIONS, "disposition", "must be INLINE or EXTERNAL_LINKS"
        )
        require(request.format in FORMATS, "format", "must be JSON_ARRAY, ARROW_STREAM or CSV")
        for index, parameter in enumerate(request.parameters):
            require(bool(parameter.name), f"parameters[{index}].name", "is required")
        return await self._starter.start("ExecuteStatement", "execute", request, ctx)

    async def TrackStatement(
        self, request: statements_pb2.TrackStatementRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Follow a statement started elsewhere (nothing runs); one operation per statement."""
        require(bool(request.statement_id), "statement_id", "is required")
        return await self._starter.start(
            "TrackStatement",
            "track",
            request,
            ctx,
            request_id=f"track:statement:{request.statement_id}"[:128],
        )

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(statements_pb2.DESCRIPTOR.services_by_name["Statements"], self)
