"""A job, run, cluster, warehouse or pipeline that does not exist → NOT_FOUND, Databricks' words.

Databricks says it two ways: ``400 INVALID_PARAMETER_VALUE`` ("Job 7 does not exist.",
"Cluster x does not exist": run-now, clusters/start and most POSTs) or ``404
RESOURCE_DOES_NOT_EXIST`` (SQL warehouses, pipelines). The simulator answers each endpoint
the way Databricks does; the server answers NOT_FOUND either way, and starts nothing.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import requests
from lro_steps import error_info, grpc_status

from lro_server._proto.lro.databricks.v1 import (
    clusters_pb2,
    clusters_pb2_grpc,
    commands_pb2,
    commands_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    libraries_pb2,
    libraries_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
    warehouses_pb2,
    warehouses_pb2_grpc,
)

CLUSTER = "0101-000000-nope"

#: (case, stub class, method, request, Databricks' message, Databricks' error code)
CASES: list[tuple[str, Any, str, Any, str, str]] = [
    (
        "run-now",
        jobs_pb2_grpc.JobsStub,
        "RunNow",
        jobs_pb2.RunNowRequest(job_id=777),
        "Job 777 does not exist.",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "repair",
        jobs_pb2_grpc.JobsStub,
        "RepairRun",
        jobs_pb2.RepairRunRequest(run_id=778, rerun_all_failed_tasks=True),
        "Run 778 does not exist.",
        "INVALID_PARAMETER_VALUE",  # runs/get's 400 (the SDK's override makes it NotFound)
    ),
    (
        "cluster start",
        clusters_pb2_grpc.ClustersStub,
        "Start",
        clusters_pb2.StartClusterRequest(cluster_id=CLUSTER),
        f"Cluster {CLUSTER} does not exist",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "cluster delete",
        clusters_pb2_grpc.ClustersStub,
        "Delete",
        clusters_pb2.DeleteClusterRequest(cluster_id=CLUSTER),
        f"Cluster {CLUSTER} does not exist",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "command",
        commands_pb2_grpc.CommandExecutionStub,
        "Execute",
        commands_pb2.ExecuteCommandRequest(cluster_id=CLUSTER, language="python", command="1"),
        f"Cluster {CLUSTER} does not exist",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "libraries",
        libraries_pb2_grpc.LibrariesStub,
        "Install",
        _install := libraries_pb2.InstallLibrariesRequest(cluster_id=CLUSTER),
        f"Cluster {CLUSTER} does not exist",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "warehouse start",
        warehouses_pb2_grpc.WarehousesStub,
        "Start",
        warehouses_pb2.StartWarehouseRequest(id="abc123"),
        "Warehouse abc123 does not exist.",
        "RESOURCE_DOES_NOT_EXIST",
    ),
    (
        "pipeline update",
        pipelines_pb2_grpc.PipelinesStub,
        "StartUpdate",
        pipelines_pb2.StartUpdateRequest(pipeline_id="p-nope"),
        "The specified pipeline p-nope was not found.",
        "RESOURCE_DOES_NOT_EXIST",
    ),
]
_install.libraries.add().update({"pypi": {"package": "requests"}})


@pytest.mark.parametrize(
    ("case", "stub", "method", "request_", "message", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_a_missing_entity_is_not_found(case, stub, method, request_, message, code, channel, sim):
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub(channel), method)(request_, timeout=30)
    error = caught.value
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    assert error.details() == message
    assert error_info(grpc_status(error)).metadata["databricks_error_code"] == code
    assert [e for e in sim.created() if e.kind not in ("jobs",)] == []


def test_not_found_over_http_too(server):
    answer = requests.post(
        f"{server.http_url}/lro.databricks.v1.Clusters/Start",
        json={"cluster_id": CLUSTER},
        timeout=30,
    )
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "code": 404,
        "message": f"Cluster {CLUSTER} does not exist",
        "status": "NOT_FOUND",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "DATABRICKS_INVALID_PARAMETER_VALUE",
                "domain": "lro.databricks.v1",
                "metadata": {"databricks_error_code": "INVALID_PARAMETER_VALUE"},
            }
        ],
    }
