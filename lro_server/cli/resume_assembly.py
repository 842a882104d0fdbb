"""Assembly of resumable methods: the Resumer, RunChain, durable methods, and the waiter
chosen by settings (wrapped so that timers and promises are resumed in-process)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Literal

from google.longrunning import operations_pb2

from lro_server.api.chains import ChainsApi
from lro_server.api.durable import DurableApi
from lro_server.api.jobs import JobsApi
from lro_server.api.registry import Method, Registry
from lro_server.core.clock import Clock, to_micros
from lro_server.core.errors import LroError
from lro_server.core.metrics import Metrics
from lro_server.core.notify import Notifier
from lro_server.core.observed import ObservedStore
from lro_server.core.operations import OperationsService, ServiceLimits, WorkRunner
from lro_server.core.principal import INTERNAL
from lro_server.core.record import OperationRecord
from lro_server.core.runners import RunnerRouter
from lro_server.core.supervisor import Supervised, Supervisor
from lro_server.durable.method import DurableMethod
from lro_server.resume import durable_payload
from lro_server.resume.chain import FAMILY, ChainMethod
from lro_server.resume.checkpoint import Checkpoint
from lro_server.resume.durable_engine import DurableEngine
from lro_server.resume.embedded import EmbeddedWaiter
from lro_server.resume.engine import Resumer
from lro_server.resume.method import WaitOutcome
from lro_server.resume.progress import ChainProgress
from lro_server.resume.recovery import begin_stalled, recover_waits
from lro_server.resume.sweep import sweep_waits
from lro_server.resume.timers import TimedWaiter
from lro_server.resume.waiter import WaitTicket
from lro_server.resume.workflows import WorkflowsOptions, WorkflowsWaiter

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ResumeConfig:
    """How waits are handled.

    Attributes:
        waiter: ``embedded`` (in-process) or ``workflows`` (Cloud Workflows executions).
        workflow: ``projects/P/locations/L/workflows/W`` of the waiter workflow.
        workflows_endpoint: ``host:port`` of an insecure executions API stand-in ("" : Google).
        recheck_seconds: Embedded waiter's safety re-read interval of awaited children.
        poll_initial_seconds: Workflow's first delay between two GetOperation polls.
        poll_max_seconds: Workflow's longest delay between two polls.
        stall_seconds: An operation still without its first move this long after its
            creation is begun again (its create's answer was lost); checked as often, with
            the sweep of stranded waits (lro_server.resume.sweep).
    """

    waiter: Literal["embedded", "workflows"] = "embedded"
    workflow: str = ""
    workflows_endpoint: str = ""
    recheck_seconds: float = 10.0
    poll_initial_seconds: float = 2.0
    poll_max_seconds: float = 60.0
    stall_seconds: float = 30.0


class ResumeAssembly:
    """Builds the Operations service around a runner router, and the Chains service."""

    def __init__(
        self,
        config: ResumeConfig,
        store: ObservedStore,
        tracker: WorkRunner,
        *,
        notifier: Notifier,
        clock: Clock,
        limits: ServiceLimits,
        metrics: Metrics | None = None,
        durable_methods: Sequence[DurableMethod] = (),
    ) -> None:
        self.config = config
        self.clock = clock
        self.resumer = Resumer(store, [], clock=clock, metrics=metrics)
        #: The server's methods, set once the application built them (durable children).
        self.registry: Registry | None = None
        router = RunnerRouter(tracker, {FAMILY: self.resumer, durable_payload.FAMILY: self.resumer})
        self.service = OperationsService(
            store, router, notifier=notifier, clock=clock, limits=limits
        )
        self.chains = ChainsApi(self.service, self.resumer, JobsApi(self.service))
        self.resumer.add(ChainMethod(self.chains.start_child, clock=clock))
        by_name = {method.name: method for method in durable_methods}
        self.engine = DurableEngine(store, by_name, self._start_child, clock=clock)
        self.engine.on_resolved = self._promise_resolved
        self.durable = DurableApi(self.service, self.resumer, self.engine, by_name, self._registry)
        self.resumer.add(self.engine)
        self.waiter: EmbeddedWaiter | WorkflowsWaiter
        if config.waiter == "workflows":
            options = WorkflowsOptions(
                workflow=config.workflow,
                endpoint=config.workflows_endpoint,
                initial_poll_seconds=config.poll_initial_seconds,
                max_poll_seconds=config.poll_max_seconds,
            )
            self.waiter = WorkflowsWaiter(options, clock=clock)
        else:
            self.waiter = EmbeddedWaiter(
                self.resumer, store, clock=clock, recheck_seconds=config.recheck_seconds
            )
            store.add_listener(self.waiter.on_change)
        self._sweep: Supervised | None = None
        #: The waiter waits are handed to: timers and promises here, children to the mode's.
        self.timed = TimedWaiter(self.waiter, self._resume_later, clock)
        self.resumer.bind(self.timed, self._cancel_child)
        store.add_listener(ChainProgress(store, self.resumer.spawn, clock=clock).changed)

    async def _cancel_child(self, name: str) -> None:
        await self.service.cancel(name, INTERNAL)

    def _registry(self) -> Registry | None:
        return self.registry

    async def _start_child(
        self, method: str, request: dict[str, Any], *, owner: str, request_id: str, name: str
    ) -> operations_pb2.Operation:
        return await self.durable.start_child(
            method, dict(request), owner=owner, request_id=request_id, name=name
        )

    def _resume_later(self, ticket: WaitTicket, outcome: WaitOutcome) -> None:
        self.resumer.spawn(self.resumer.resume_ticket(ticket, outcome))

    def _promise_resolved(self, record: OperationRecord) -> None:
        # The server resumes a method waiting on a promise itself, in every waiter mode.
        checkpoint = Checkpoint.of(record)
        if checkpoint.wait is not None and checkpoint.wait.promises:
            self._resume_later(self.resumer.ticket(record, checkpoint), WaitOutcome.DONE)

    def methods(self) -> list[Method]:
        """Registry entries of the Chains and Methods services."""
        return [*self.chains.methods(), *self.durable.methods()]

    async def launch(self, supervisor: Supervisor) -> None:
        """Start the waiter, hand it every wait pending in the store, and keep looking for
        operations that never made their first move (loops run under ``supervisor``)."""
        self.waiter.launch(supervisor)
        methods = list(self.resumer.methods.values())
        await recover_waits(self.resumer.store, methods, self.timed, self._begin_again)
        self._sweep = supervisor.start("stalled-chains", self._begin_stalled)

    def _begin_again(self, record: OperationRecord) -> None:
        self.resumer.spawn(self.resumer.start(record))

    async def _begin_stalled(self) -> None:
        interval = self.config.stall_seconds
        while True:
            await self.clock.sleep(interval)
            created_before = to_micros(self.clock.now()) - int(interval * 1_000_000)
            methods = list(self.resumer.methods.values())
            try:
                await begin_stalled(
                    self.resumer.store, methods, self._begin_again, created_before_us=created_before
                )
                await sweep_waits(
                    self.resumer.store,
                    self.resumer,
                    methods,
                    self.clock,
                    overdue_seconds=self.overdue_seconds,
                    execution_state=getattr(self.waiter, "execution_state", None),
                )
            except LroError as exc:
                _log.warning("looking for stalled operations failed: %s", exc)

    @property
    def overdue_seconds(self) -> float:
        """How long after due a wait counts as stranded: the waiter's longest poll delay
        (Cloud Workflows) plus one sweep interval."""
        poll = self.config.poll_max_seconds if self.config.waiter == "workflows" else 0.0
        return poll + self.config.stall_seconds

    async def stop(self) -> None:
        """Stop the waiter and background resumes (waits stay in their checkpoints)."""
        if self._sweep is not None:
            await self._sweep.stop()
        await self.waiter.stop()
        await self.resumer.stop()
