"""A constant GetOperation: the ceiling the real server is measured against.

A benchmark server started with ``Application(config, methods=with_constant_get)`` (see
``benchmarks/server_process.py``, switch ``benchmark_ceiling``) has the registry's
GetOperation handler swapped for one that returns the same in-memory Operation whatever the
name, with no store read and no service logic; over gRPC it is answered at once with that
Operation serialized once (the gRPC front asks a method's answer before awaiting its
handler, as the real GetOperation is answered from the store's memory). Everything else
stays the server's own: the registry, the gRPC wrapper (metadata, telemetry, error
mapping), the HTTP front. The difference between this and the real server is what the
store and the Operations service cost. It lives here, outside the server's package, so no
deployment can switch it on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from google.longrunning import operations_pb2
from google.protobuf import timestamp_pb2

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method
from lro_server.core.principal import Principal

GET_OPERATION = "/google.longrunning.Operations/GetOperation"


def constant_operation() -> operations_pb2.Operation:
    """A done Jobs.RunNow operation of typical size (metadata with two tasks, a response)."""
    stamp = timestamp_pb2.Timestamp(seconds=1_790_000_000, nanos=123_000_000)
    metadata = jobs_pb2.RunMetadata(
        run_id=100_000,
        job_id=42,
        run_page_url="https://example.cloud.databricks.com/#job/42/run/100000",
        life_cycle_state="TERMINATED",
        result_state="SUCCESS",
        status="TERMINATED",
        tasks=[
            jobs_pb2.TaskState(task_key="extract", life_cycle_state="TERMINATED"),
            jobs_pb2.TaskState(task_key="train", life_cycle_state="TERMINATED"),
        ],
        progress_percent=100,
        create_time=stamp,
        update_time=stamp,
    )
    operation = operations_pb2.Operation(
        name="operations/00000000-0000-4000-8000-000000000000", done=True
    )
    operation.metadata.Pack(metadata)
    operation.response.Pack(jobs_pb2.Run(run_id=100_000, job_id=42))
    return operation


def with_constant_get(methods: Iterable[Method]) -> list[Method]:
    """``methods`` with GetOperation answering :func:`constant_operation` (benchmark only)."""
    constant = constant_operation()
    serialized = constant.SerializeToString()

    async def get_operation(
        request: operations_pb2.GetOperationRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        return constant

    def answer(name: str, caller: Principal) -> bytes:
        return serialized

    return [
        dataclasses.replace(m, handler=get_operation, answer=answer)
        if m.path == GET_OPERATION
        else m
        for m in methods
    ]
