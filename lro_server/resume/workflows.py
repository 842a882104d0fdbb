"""The Cloud Workflows waiter: one execution of workflows/operation_waiter.yaml per wait.

The execution's argument is the whole contract with the YAML::

    {"operationId": "<parent id>", "operation": "operations/<parent id>",
     "children": ["operations/…"], "resumeMethod": "lro.databricks.v1.Chains/RunChain",
     "waitId": "7", "timeoutSeconds": 3540.0,
     "poll": {"initialDelaySeconds": 2, "maxDelaySeconds": 60, "multiplier": 2}}

The gateway URL is *not* in it: the workflow reads ``LRO_GATEWAY_URL`` from its own
environment (set by terraform), so a caller cannot point the workflow's identity token
elsewhere. google-cloud-workflows is a blocking client: calls run in a small thread pool,
never on the event loop, each with a timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import json
import logging
from typing import Any

from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import InvalidArgument, Unavailable
from lro_server.core.names import operation_id
from lro_server.core.supervisor import Supervisor
from lro_server.resume.waiter import WaitTicket

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowsOptions:
    """Where the waiter workflow is and how it polls.

    Attributes:
        workflow: ``projects/P/locations/L/workflows/W``.
        endpoint: ``host:port`` of an insecure stand-in of the executions API (tests,
            emulators; anonymous credentials); "" for Google's endpoint with default
            credentials.
        initial_poll_seconds: First delay between two GetOperation calls of a child.
        max_poll_seconds: Longest delay between two polls.
        multiplier: Backoff factor of the delay.
        call_timeout_seconds: Timeout of one CreateExecution call.
        threads: Threads running the blocking client.
    """

    workflow: str
    endpoint: str = ""
    initial_poll_seconds: float = 2.0
    max_poll_seconds: float = 60.0
    multiplier: float = 2.0
    call_timeout_seconds: float = 30.0
    threads: int = 4


def execution_argument(
    ticket: WaitTicket, options: WorkflowsOptions, now_us: int
) -> dict[str, Any]:
    """The JSON argument of the execution that waits for ``ticket``."""
    return {
        "operationId": operation_id(ticket.parent),
        "operation": ticket.parent,
        "children": list(ticket.children),
        "resumeMethod": ticket.method,
        "waitId": str(ticket.wait_id),
        "timeoutSeconds": max(0.0, (ticket.deadline_us - now_us) / 1e6),
        "poll": {
            "initialDelaySeconds": options.initial_poll_seconds,
            "maxDelaySeconds": options.max_poll_seconds,
            "multiplier": options.multiplier,
        },
    }


class WorkflowsWaiter:
    """Hands waits to Cloud Workflows (``LRO_WAITER=workflows``)."""

    kind = "workflows"

    def __init__(
        self, options: WorkflowsOptions, *, client: Any = None, clock: Clock | None = None
    ) -> None:
        if options.workflow.count("/") != 5 or not options.workflow.startswith("projects/"):
            raise InvalidArgument(
                "the workflows waiter needs LRO_WORKFLOW=projects/P/locations/L/workflows/W",
                metadata={"field": "workflow"},
            )
        self.options = options
        self.clock = clock or SystemClock()
        self._client = client
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=options.threads, thread_name_prefix="workflows"
        )

    def _executions(self) -> Any:
        if self._client is None:
            self._client = _make_client(self.options.endpoint)
        return self._client

    async def hand_off(self, ticket: WaitTicket) -> str:
        """Create an execution; returns its name."""
        argument = execution_argument(ticket, self.options, to_micros(self.clock.now()))
        call = functools.partial(self._create, json.dumps(argument, separators=(",", ":")))
        name: str = await asyncio.get_running_loop().run_in_executor(self._pool, call)
        _log.info("%s: wait %d handed to %s", ticket.parent, ticket.wait_id, name)
        return name

    def _create(self, argument: str) -> str:
        from google.api_core import exceptions
        from google.cloud.workflows import executions_v1

        try:
            execution = self._executions().create_execution(
                parent=self.options.workflow,
                execution=executions_v1.Execution(argument=argument),
                timeout=self.options.call_timeout_seconds,
            )
        except exceptions.GoogleAPIError as exc:
            raise Unavailable(
                f"creating a workflow execution failed: {exc}", reason="WAITER_UNAVAILABLE"
            ) from exc
        return str(execution.name)

    async def execution_state(self, handle: str) -> str:
        """The state of the execution ``handle`` (``ACTIVE``, ``SUCCEEDED``, ``FAILED``,
        ``CANCELLED``, ...), ``MISSING`` once deleted, "" when the API cannot say."""
        call = functools.partial(self._state, handle)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _state(self, handle: str) -> str:
        from google.api_core import exceptions

        try:
            execution = self._executions().get_execution(
                name=handle, timeout=self.options.call_timeout_seconds
            )
        except exceptions.NotFound:
            return "MISSING"
        except exceptions.GoogleAPIError as exc:
            _log.warning("reading the state of %s failed: %s", handle, exc)
            return ""
        return str(execution.state.name)

    async def restore(self, ticket: WaitTicket) -> None:
        """After a restart: launch again only if no execution was recorded."""
        if not ticket.handle:
            await self.hand_off(ticket)

    def forget(self, parent: str) -> None:
        """Nothing to drop: executions end by themselves."""

    def launch(self, supervisor: Supervisor) -> None:
        """Nothing runs in the background."""

    async def stop(self) -> None:
        """Release the thread pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _make_client(endpoint: str) -> Any:
    from google.cloud.workflows import executions_v1

    if not endpoint:
        return executions_v1.ExecutionsClient()
    import grpc
    from google.cloud.workflows.executions_v1.services.executions.transports import (
        ExecutionsGrpcTransport,
    )

    transport = ExecutionsGrpcTransport(channel=grpc.insecure_channel(endpoint))
    return executions_v1.ExecutionsClient(transport=transport)
