"""lro.databricks.v1.CommandExecution handlers: validate, describe the work, start it."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server._proto.lro.databricks.v1 import commands_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import require
from lro_server.api.starter import Starter
from lro_server.core.operations import OperationsService

SERVICE = "lro.databricks.v1.CommandExecution"
#: Languages of API 1.2 execution contexts.
LANGUAGES = ("python", "scala", "sql", "r")


class CommandsApi:
    """Commands on a cluster as operations."""

    def __init__(self, service: OperationsService) -> None:
        self._starter = Starter(service, SERVICE, "commands")

    async def Execute(
        self, request: commands_pb2.ExecuteCommandRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Run a command (creating an execution context when none is given)."""
        require(bool(request.cluster_id), "cluster_id", "is required")
        require(bool(request.command), "command", "is required")
        require(request.language in LANGUAGES, "language", f"must be one of {', '.join(LANGUAGES)}")
        return await self._starter.start("Execute", "execute", request, ctx)

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(commands_pb2.DESCRIPTOR.services_by_name["CommandExecution"], self)
