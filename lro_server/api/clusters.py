"""lro.databricks.v1.Clusters handlers: validate, describe the work, start an operation."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server._proto.lro.databricks.v1 import clusters_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import require
from lro_server.api.starter import MINUTES, Starter
from lro_server.core.operations import OperationsService

SERVICE = "lro.databricks.v1.Clusters"
#: Cluster starts wait for cloud capacity: 30 minutes by default (terminating: 20).
START_TIMEOUT = 30 * MINUTES
DELETE_TIMEOUT = 20 * MINUTES


class ClustersApi:
    """Databricks clusters as operations."""

    def __init__(self, service: OperationsService) -> None:
        self._starter = Starter(service, SERVICE, "clusters")

    async def Create(
        self, request: clusters_pb2.CreateClusterRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Create and start a cluster (clusters/create)."""
        require(bool(request.spark_version), "spark_version", "is required")
        return await self._starter.start(
            "Create", "create", request, ctx, default_timeout=START_TIMEOUT
        )

    async def Start(
        self, request: clusters_pb2.StartClusterRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Start a terminated cluster (clusters/start)."""
        return await self._by_id("Start", "start", request, ctx)

    async def Restart(
        self, request: clusters_pb2.RestartClusterRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Restart a running cluster (clusters/restart)."""
        return await self._by_id("Restart", "restart", request, ctx)

    async def Resize(
        self, request: clusters_pb2.ResizeClusterRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Resize a running cluster (clusters/resize)."""
        require(
            request.num_workers > 0 or request.HasField("autoscale"),
            "num_workers",
            "num_workers or autoscale is required",
        )
        return await self._by_id("Resize", "resize", request, ctx)

    async def Edit(
        self, request: clusters_pb2.EditClusterRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Change a cluster's configuration (clusters/edit)."""
        require(bool(request.spark_version), "spark_version", "is required")
        return await self._by_id("Edit", "edit", request, ctx)

    async def Delete(
        self, request: clusters_pb2.DeleteClusterRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Terminate a cluster (clusters/delete)."""
        return await self._by_id("Delete", "delete", request, ctx, timeout=DELETE_TIMEOUT)

    async def _by_id(
        self,
        method: str,
        action: str,
        request: clusters_pb2.StartClusterRequest
        | clusters_pb2.RestartClusterRequest
        | clusters_pb2.ResizeClusterRequest
        | clusters_pb2.EditClusterRequest
        | clusters_pb2.DeleteClusterRequest,
        ctx: CallContext,
        *,
        timeout: float = START_TIMEOUT,
    ) -> operations_pb2.Operation:
        require(bool(request.cluster_id), "cluster_id", "is required")
        return await self._starter.start(method, action, request, ctx, default_timeout=timeout)

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(clusters_pb2.DESCRIPTOR.services_by_name["Clusters"], self)
