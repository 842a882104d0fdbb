"""lro.databricks.v1.Jobs handlers: validate, describe the work, start an operation."""

from __future__ import annotations

from collections.abc import Sequence

from google.longrunning import operations_pb2
from google.protobuf import struct_pb2

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.api.context import CallContext
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import duration_seconds, require
from lro_server.api.starter import Starter
from lro_server.core.operations import OperationsService
from lro_server.databricks.work import RepairPolicy

SERVICE = "lro.databricks.v1.Jobs"
#: Most automatic repairs of one run.
MAX_REPAIRS = 10
#: Longest pause before an automatic repair (1 hour).
MAX_REPAIR_DELAY_SECONDS = 3600.0


class JobsApi:
    """Databricks job runs as operations."""

    def __init__(self, service: OperationsService) -> None:
        self._starter = Starter(service, SERVICE, "jobs")

    async def RunNow(
        self, request: jobs_pb2.RunNowRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Run an existing job (jobs/run-now)."""
        require(request.job_id > 0, "job_id", "must be a positive job id")
        return await self._starter.start(
            "RunNow", "run_now", request, ctx, repair=_repair_policy(request)
        )

    async def Submit(
        self, request: jobs_pb2.SubmitRunRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Submit a one-time run (jobs/runs/submit)."""
        _require_task_keys(request.tasks)
        return await self._starter.start(
            "Submit", "submit", request, ctx, repair=_repair_policy(request)
        )

    async def RepairRun(
        self, request: jobs_pb2.RepairRunRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Rerun tasks of a finished run (jobs/runs/repair)."""
        require(request.run_id > 0, "run_id", "must be a positive run id")
        require(
            len(request.rerun_tasks) > 0 or request.rerun_all_failed_tasks,
            "rerun_tasks",
            "name tasks to rerun, or set rerun_all_failed_tasks",
        )
        return await self._starter.start("RepairRun", "repair", request, ctx)

    async def CreateAndRun(
        self, request: jobs_pb2.CreateAndRunRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Create a job and run it once (jobs/create, then jobs/run-now)."""
        _require_task_keys(request.tasks)
        return await self._starter.start(
            "CreateAndRun", "create_and_run", request, ctx, repair=_repair_policy(request)
        )

    async def TrackRun(
        self, request: jobs_pb2.TrackRunRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Follow a run started elsewhere (nothing is started); one operation per run."""
        require(request.run_id > 0, "run_id", "must be a positive run id")
        return await self._starter.start(
            "TrackRun", "track", request, ctx, request_id=f"track:run:{request.run_id}"
        )

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(jobs_pb2.DESCRIPTOR.services_by_name["Jobs"], self)


def _repair_policy(
    request: jobs_pb2.RunNowRequest | jobs_pb2.SubmitRunRequest | jobs_pb2.CreateAndRunRequest,
) -> RepairPolicy | None:
    """The request's repair policy (None when absent or with no repairs)."""
    if not request.HasField("repair_policy"):
        return None
    policy = request.repair_policy
    require(
        0 <= policy.max_repairs <= MAX_REPAIRS,
        "repair_policy.max_repairs",
        f"must be between 0 and {MAX_REPAIRS}",
    )
    delay = duration_seconds(policy.delay, "repair_policy.delay")
    require(
        0 <= delay <= MAX_REPAIR_DELAY_SECONDS,
        "repair_policy.delay",
        f"must be between 0 and {MAX_REPAIR_DELAY_SECONDS:g}s",
    )
    for index, kind in enumerate(policy.termination_types):
        require(
            kind.isupper() and kind.replace("_", "").isalpha(),
            f"repair_policy.termination_types[{index}]",
            "must be a termination type such as CLOUD_FAILURE",
        )
    if policy.max_repairs == 0:
        return None
    return RepairPolicy(policy.max_repairs, delay, tuple(policy.termination_types))


def _require_task_keys(tasks: Sequence[struct_pb2.Struct]) -> None:
    require(len(tasks) > 0, "tasks", "at least one task is required")
    for index, task in enumerate(tasks):
        require(
            "task_key" in task.fields and bool(task.fields["task_key"].string_value),
            f"tasks[{index}].task_key",
            "is required",
        )
