"""lro.databricks.v1.Warehouses handlers: validate, describe the work, start an operation."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server._proto.lro.databricks.v1 import warehouses_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import require
from lro_server.api.starter import MINUTES, Starter
from lro_server.core.operations import OperationsService

SERVICE = "lro.databricks.v1.Warehouses"
#: Classic warehouses start clusters: 30 minutes by default (stopping: 20).
START_TIMEOUT = 30 * MINUTES
STOP_TIMEOUT = 20 * MINUTES


class WarehousesApi:
    """Databricks SQL warehouses as operations."""

    def __init__(self, service: OperationsService) -> None:
        self._starter = Starter(service, SERVICE, "warehouses")

    async def Create(
        self, request: warehouses_pb2.CreateWarehouseRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Create and start a warehouse."""
        require(bool(request.name), "name", "is required")
        require(bool(request.cluster_size), "cluster_size", "is required")
        return await self._starter.start(
            "Create", "create", request, ctx, default_timeout=START_TIMEOUT
        )

    async def Start(
        self, request: warehouses_pb2.StartWarehouseRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Start a warehouse."""
        require(bool(request.id), "id", "is required")
        return await self._starter.start(
            "Start", "start", request, ctx, default_timeout=START_TIMEOUT
        )

    async def Stop(
        self, request: warehouses_pb2.StopWarehouseRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Stop a warehouse."""
        require(bool(request.id), "id", "is required")
        return await self._starter.start("Stop", "stop", request, ctx, default_timeout=STOP_TIMEOUT)

    async def Edit(
        self, request: warehouses_pb2.EditWarehouseRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Change a warehouse's settings."""
        require(bool(request.id), "id", "is required")
        return await self._starter.start(
            "Edit", "edit", request, ctx, default_timeout=START_TIMEOUT
        )

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(warehouses_pb2.DESCRIPTOR.services_by_name["Warehouses"], self)
