"""lro.databricks.v1.Pipelines handlers: validate, describe the work, start an operation."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server._proto.lro.databricks.v1 import pipelines_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import require
from lro_server.api.starter import MINUTES, Starter
from lro_server.core.operations import OperationsService

SERVICE = "lro.databricks.v1.Pipelines"
#: Pipeline updates process data: 60 minutes by default (stopping: 20).
UPDATE_TIMEOUT = 60 * MINUTES
STOP_TIMEOUT = 20 * MINUTES


class PipelinesApi:
    """Delta Live Tables pipelines as operations."""

    def __init__(self, service: OperationsService) -> None:
        self._starter = Starter(service, SERVICE, "pipelines")

    async def StartUpdate(
        self, request: pipelines_pb2.StartUpdateRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Start a pipeline update."""
        require(bool(request.pipeline_id), "pipeline_id", "is required")
        return await self._starter.start(
            "StartUpdate", "start_update", request, ctx, default_timeout=UPDATE_TIMEOUT
        )

    async def Stop(
        self, request: pipelines_pb2.StopPipelineRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Stop a pipeline."""
        require(bool(request.pipeline_id), "pipeline_id", "is required")
        return await self._starter.start("Stop", "stop", request, ctx, default_timeout=STOP_TIMEOUT)

    async def TrackUpdate(
        self, request: pipelines_pb2.TrackUpdateRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Follow an update started elsewhere (nothing is started); one operation per update."""
        require(bool(request.pipeline_id), "pipeline_id", "is required")
        require(bool(request.update_id), "update_id", "is required")
        return await self._starter.start(
            "TrackUpdate",
            "track_update",
            request,
            ctx,
            default_timeout=UPDATE_TIMEOUT,
            request_id=f"track:update:{request.pipeline_id}/{request.update_id}"[:128],
        )

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(pipelines_pb2.DESCRIPTOR.services_by_name["Pipelines"], self)
