"""Helpers shared by the RunChain tests: steps, futures, resume calls, metadata."""

from __future__ import annotations

from typing import Any

import requests
from google.api_core import operation, operations_v1
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, struct_pb2

from lro_server._proto.lro.databricks.v1 import chains_pb2, jobs_pb2

METHOD_PATH = "/lro.databricks.v1.Chains/RunChain"
GET_PATH = "/google.longrunning.Operations/GetOperation"


def run_now(name: str, job_id: int, timeout: float | None = None) -> chains_pb2.ChainStep:
    """A run-now step."""
    request = jobs_pb2.RunNowRequest(job_id=job_id, notebook_params={"step": name})
    if timeout is not None:
        request.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout)))
    return chains_pb2.ChainStep(name=name, run_now=request)


def submit(name: str, run_name: str) -> chains_pb2.ChainStep:
    """A one-time submit step with two dependent tasks and a git source."""
    tasks = []
    for key, depends in (("features", None), ("train", "features")):
        task = struct_pb2.Struct()
        body: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": f"nb/{key}"}}
        if depends:
            body["depends_on"] = [{"task_key": depends}]
        task.update(body)
        tasks.append(task)
    git = struct_pb2.Struct()
    git.update(
        {"git_url": "https://github.com/acme/ml", "git_provider": "gitHub", "git_branch": "main"}
    )
    return chains_pb2.ChainStep(
        name=name, submit=jobs_pb2.SubmitRunRequest(run_name=run_name, tasks=tasks, git_source=git)
    )


def chain_request(
    *steps: chains_pb2.ChainStep, timeout: float | None = None
) -> chains_pb2.RunChainRequest:
    """A RunChainRequest."""
    request = chains_pb2.RunChainRequest(steps=steps)
    if timeout is not None:
        request.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout)))
    return request


def future(op: operations_pb2.Operation, operations: operations_v1.OperationsClient) -> Any:
    """google-api-core's future of a RunChain operation."""
    return operation.from_gapic(
        op, operations, chains_pb2.ChainResult, metadata_type=chains_pb2.ChainMetadata
    )


def metadata(op: operations_pb2.Operation) -> chains_pb2.ChainMetadata:
    """The ChainMetadata of an operation."""
    meta = chains_pb2.ChainMetadata()
    op.metadata.Unpack(meta)
    return meta


def get(operations: operations_v1.OperationsClient, name: str) -> operations_pb2.Operation:
    """GetOperation."""
    return operations.get_operation(name)


def resume_http(
    base_url: str,
    parent: str,
    *,
    wait_id: str | None = None,
    outcome: str | None = None,
    body: Any = None,
) -> requests.Response:
    """The waiter's resume call through the gateway."""
    headers = {"x-alis-operation-id": parent.rsplit("/", 1)[-1]}
    if wait_id is not None:
        headers["x-lro-wait-id"] = wait_id
    if outcome is not None:
        headers["x-lro-wait-outcome"] = outcome
    return requests.post(
        base_url + METHOD_PATH,
        json={"data": {}} if body is None else body,
        headers=headers,
        timeout=30,
    )


def running_child(operations: operations_v1.OperationsClient, parent: str, step: int) -> str:
    """The child operation of ``step`` once its run started ("" before)."""
    meta = metadata(get(operations, parent))
    child = meta.steps[step].operation
    if not child:
        return ""
    run = jobs_pb2.RunMetadata()
    get(operations, child).metadata.Unpack(run)
    return child if run.run_id else ""
