"""The messages of the lro.databricks.v1 API: the stable import path for clients.

    from lro_server.v1 import RunNowRequest, Run, RunMetadata

Requests, operation metadata and responses of every service (Jobs, Clusters,
CommandExecution, Libraries, Pipelines, Warehouses, Chains, Hints). The generated modules
behind them (``lro_server._proto``) are private and may move; these names do not.
"""

from __future__ import annotations

from lro_server._proto.lro.databricks.v1.chains_pb2 import (
    ChainMetadata,
    ChainResult,
    ChainStep,
    RunChainRequest,
    StepRun,
    StepState,
)
from lro_server._proto.lro.databricks.v1.clusters_pb2 import (
    Cluster,
    ClusterMetadata,
    CreateClusterRequest,
    DeleteClusterRequest,
    EditClusterRequest,
    ResizeClusterRequest,
    RestartClusterRequest,
    StartClusterRequest,
    TerminationReason,
)
from lro_server._proto.lro.databricks.v1.commands_pb2 import (
    CommandMetadata,
    CommandResult,
    ExecuteCommandRequest,
)
from lro_server._proto.lro.databricks.v1.hints_pb2 import (
    RefreshRequest,
)
from lro_server._proto.lro.databricks.v1.jobs_pb2 import (
    CreateAndRunRequest,
    RepairRunRequest,
    Run,
    RunMetadata,
    RunNowRequest,
    SubmitRunRequest,
    TaskState,
)
from lro_server._proto.lro.databricks.v1.libraries_pb2 import (
    InstallLibrariesRequest,
    LibrariesMetadata,
    LibrariesResult,
    LibraryStatus,
    UninstallLibrariesRequest,
)
from lro_server._proto.lro.databricks.v1.pipelines_pb2 import (
    Pipeline,
    PipelineMetadata,
    PipelineUpdate,
    StartUpdateRequest,
    StopPipelineRequest,
)
from lro_server._proto.lro.databricks.v1.warehouses_pb2 import (
    CreateWarehouseRequest,
    EditWarehouseRequest,
    StartWarehouseRequest,
    StopWarehouseRequest,
    Warehouse,
    WarehouseMetadata,
)

#: Full names of the API's services.
SERVICES = (
    "lro.databricks.v1.Jobs",
    "lro.databricks.v1.Clusters",
    "lro.databricks.v1.CommandExecution",
    "lro.databricks.v1.Libraries",
    "lro.databricks.v1.Pipelines",
    "lro.databricks.v1.Warehouses",
    "lro.databricks.v1.Chains",
    "lro.databricks.v1.Hints",
)

__all__ = [
    "SERVICES",
    "ChainMetadata",
    "ChainResult",
    "ChainStep",
    "Cluster",
    "ClusterMetadata",
    "CommandMetadata",
    "CommandResult",
    "CreateAndRunRequest",
    "CreateClusterRequest",
    "CreateWarehouseRequest",
    "DeleteClusterRequest",
    "EditClusterRequest",
    "EditWarehouseRequest",
    "ExecuteCommandRequest",
    "InstallLibrariesRequest",
    "LibrariesMetadata",
    "LibrariesResult",
    "LibraryStatus",
    "Pipeline",
    "PipelineMetadata",
    "PipelineUpdate",
    "RefreshRequest",
    "RepairRunRequest",
    "ResizeClusterRequest",
    "RestartClusterRequest",
    "Run",
    "RunChainRequest",
    "RunMetadata",
    "RunNowRequest",
    "StartClusterRequest",
    "StartUpdateRequest",
    "StartWarehouseRequest",
    "StepRun",
    "StepState",
    "StopPipelineRequest",
    "StopWarehouseRequest",
    "SubmitRunRequest",
    "TaskState",
    "TerminationReason",
    "UninstallLibrariesRequest",
    "Warehouse",
    "WarehouseMetadata",
]
