"""lro.databricks.v1.Libraries handlers: validate, describe the work, start an operation."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server._proto.lro.databricks.v1 import libraries_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import require
from lro_server.api.starter import MINUTES, Starter
from lro_server.core.operations import OperationsService

SERVICE = "lro.databricks.v1.Libraries"
#: Installs wait for the cluster and resolve packages: 30 minutes by default.
TIMEOUT = 30 * MINUTES


class LibrariesApi:
    """Cluster libraries as operations."""

    def __init__(self, service: OperationsService) -> None:
        self._starter = Starter(service, SERVICE, "libraries")

    async def Install(
        self, request: libraries_pb2.InstallLibrariesRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Install libraries on a cluster."""
        self._validate(request)
        return await self._starter.start(
            "Install", "install", request, ctx, default_timeout=TIMEOUT
        )

    async def Uninstall(
        self, request: libraries_pb2.UninstallLibrariesRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Uninstall libraries from a cluster."""
        self._validate(request)
        return await self._starter.start(
            "Uninstall", "uninstall", request, ctx, default_timeout=TIMEOUT
        )

    @staticmethod
    def _validate(
        request: libraries_pb2.InstallLibrariesRequest | libraries_pb2.UninstallLibrariesRequest,
    ) -> None:
        require(bool(request.cluster_id), "cluster_id", "is required")
        require(len(request.libraries) > 0, "libraries", "at least one library is required")
        for index, library in enumerate(request.libraries):
            require(len(library.fields) == 1, f"libraries[{index}]", "names exactly one kind")

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(libraries_pb2.DESCRIPTOR.services_by_name["Libraries"], self)
