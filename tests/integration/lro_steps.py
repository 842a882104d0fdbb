"""Steps shared by the integration tests: start held runs, wait for states, read errors."""

from __future__ import annotations

from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.testing.polling import wait_until

RUN_METADATA = "lro.databricks.v1.RunMetadata"


def run_metadata(op: operations_pb2.Operation) -> jobs_pb2.RunMetadata:
    """The operation's RunMetadata."""
    meta = jobs_pb2.RunMetadata()
    assert op.metadata.Unpack(meta), op.metadata.type_url
    return meta


def wait_run_id(operations: Any, name: str, timeout: float = 10.0) -> int:
    """Poll GetOperation until the run is started; its Databricks run id."""

    def probe() -> int:
        return run_metadata(operations.get_operation(name)).run_id

    return int(wait_until(probe, timeout=timeout, what=f"the run of {name} to start"))


def wait_done(operations: Any, name: str, timeout: float = 10.0) -> operations_pb2.Operation:
    """Poll GetOperation until the operation is done; the final operation."""

    def probe() -> operations_pb2.Operation | None:
        op = operations.get_operation(name)
        return op if op.done else None

    op: operations_pb2.Operation = wait_until(probe, timeout=timeout, what=f"{name} to finish")
    return op


def start_held(jobs: Any, sim: Any, job_id: int, **request: Any) -> operations_pb2.Operation:
    """RunNow on ``job_id`` whose runs stay RUNNING until the test finishes them."""
    sim.set_timeline("runs", "hold", job_id=job_id)
    return jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id, **request))


def grpc_status(error: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status of a failed call (from grpc-status-details-bin)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the error carries no grpc-status-details-bin"
    assert status.code == error.code().value[0]  # type: ignore[attr-defined]
    return status


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    """The one ErrorInfo detail of ``status``."""
    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append(info)
    assert len(infos) == 1, status
    assert infos[0].domain and infos[0].reason
    return infos[0]


def http_error_info(body: dict[str, Any]) -> dict[str, Any]:
    """The ErrorInfo of a Google JSON error body, after checking the body's shape."""
    error = body["error"]
    assert isinstance(error["code"], int) and error["message"] and error["status"]
    infos = [
        d for d in error["details"] if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    ]
    assert len(infos) == 1, body
    assert infos[0]["reason"] and infos[0]["domain"]
    info: dict[str, Any] = infos[0]
    return info
