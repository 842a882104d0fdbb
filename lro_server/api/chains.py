"""lro.databricks.v1.Chains handlers: start a chain, or resume one (``x-alis-operation-id``).

A call with the ``x-alis-operation-id`` header is a resume, whatever its body (the HTTP
gateway does not check the fields of a resume call's body, so the seed's ``{"data": {}}``
is fine; see ``lro_server.http.bodies``). Two optional headers tell
the server about the wait being ended:

- ``x-lro-wait-id``: the wait id the waiter was given; a resume of an older wait is a no-op.
- ``x-lro-wait-outcome``: ``done`` (default), ``timeout`` (the waiter's deadline passed with
  children still running: they are cancelled and the chain fails DEADLINE_EXCEEDED) or
  ``error`` (the waiter could not follow a child: the wait is handed off again, a few times).

The server never trusts a waiter's claim that children are done: it re-reads them.
"""

from __future__ import annotations

from google.longrunning import operations_pb2
from google.protobuf import json_format

from lro_server._proto.lro.databricks.v1 import chains_pb2, jobs_pb2
from lro_server.api.context import CallContext
from lro_server.api.jobs import JobsApi
from lro_server.api.registry import Method, service_methods
from lro_server.api.requests import message_body, require, start_args, timeout_seconds
from lro_server.api.resuming import resume_call
from lro_server.core.operations import OperationsService
from lro_server.core.principal import Principal
from lro_server.resume.chain import FAMILY, METHOD, ChainWork, StepSpec
from lro_server.resume.engine import Resumer

SERVICE = "lro.databricks.v1.Chains"
#: Most steps in one chain.
MAX_STEPS = 100
#: Default timeout of a whole chain.
DEFAULT_CHAIN_TIMEOUT_SECONDS = 24 * 3600.0


class ChainsApi:
    """Chains of job runs as one operation."""

    def __init__(self, service: OperationsService, resumer: Resumer, jobs: JobsApi) -> None:
        self.service = service
        self.resumer = resumer
        self.jobs = jobs

    async def RunChain(
        self, request: chains_pb2.RunChainRequest, ctx: CallContext
    ) -> operations_pb2.Operation:
        """Start a chain of job runs, or resume a waiting one."""
        if ctx.resume_id:
            return await resume_call(self.resumer, ctx, METHOD)
        steps = _steps(request)
        args = start_args(request, default_timeout=DEFAULT_CHAIN_TIMEOUT_SECONDS)
        return await self.service.start(
            caller=ctx.principal,
            method=METHOD,
            family=FAMILY,
            payload=ChainWork(steps).payload(),
            timeout_seconds=args.timeout_seconds,
            request_id=args.request_id,
            labels=args.labels,
            name=ctx.operation_name,
        )

    async def start_child(
        self, step: StepSpec, *, owner: str, request_id: str, timeout_seconds: float
    ) -> operations_pb2.Operation:
        """Start one step as an ordinary Jobs operation owned by the chain's owner."""
        ctx = CallContext(principal=Principal(subject=owner))
        if step.kind == "run_now":
            run_now = json_format.ParseDict(step.request, jobs_pb2.RunNowRequest())
            run_now.request_id = request_id
            run_now.timeout.FromNanoseconds(int(timeout_seconds * 1e9))
            return await self.jobs.RunNow(run_now, ctx)
        submit = json_format.ParseDict(step.request, jobs_pb2.SubmitRunRequest())
        submit.request_id = request_id
        submit.timeout.FromNanoseconds(int(timeout_seconds * 1e9))
        return await self.jobs.Submit(submit, ctx)

    def methods(self) -> list[Method]:
        """The registry entries of this service."""
        return service_methods(chains_pb2.DESCRIPTOR.services_by_name["Chains"], self)


def _steps(request: chains_pb2.RunChainRequest) -> tuple[StepSpec, ...]:
    """Validate the steps and describe them (the chain's payload)."""
    require(len(request.steps) > 0, "steps", "at least one step is required")
    require(len(request.steps) <= MAX_STEPS, "steps", f"at most {MAX_STEPS} steps")
    out: list[StepSpec] = []
    names: set[str] = set()
    for index, step in enumerate(request.steps):
        field = f"steps[{index}]"
        name = step.name or f"step-{index + 1}"
        require(name not in names, f"{field}.name", f"{name!r} is used by another step")
        require(len(name) <= 100 and name.isprintable(), f"{field}.name", "is not a valid name")
        names.add(name)
        kind = step.WhichOneof("run")
        require(kind is not None, field, "needs run_now or submit")
        message: jobs_pb2.RunNowRequest | jobs_pb2.SubmitRunRequest
        if kind == "run_now":
            message = step.run_now
            require(message.job_id > 0, f"{field}.run_now.job_id", "must be a positive job id")
        else:
            message = step.submit
            require(len(message.tasks) > 0, f"{field}.submit.tasks", "at least one task")
            for t, task in enumerate(message.tasks):
                require(
                    "task_key" in task.fields and bool(task.fields["task_key"].string_value),
                    f"{field}.submit.tasks[{t}].task_key",
                    "is required",
                )
        timeout = 0.0
        if message.HasField("timeout"):
            timeout = timeout_seconds(message.timeout, f"{field}.{kind}.timeout")
        body = message_body(message)
        out.append(StepSpec(name=name, kind=str(kind), request=body, timeout_seconds=timeout))
    return tuple(out)
