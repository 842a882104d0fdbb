"""RunChain as a resumable method: job runs one after the other, each a child operation.

The payload (:class:`ChainWork`) holds the steps as given; the checkpoint state holds
progress: the index of the step in progress, every step's :class:`StepState` (proto3
JSON) and the run of every finished step. Children are ordinary Jobs operations started
through the same OperationsService (tracked, listed and cancellable like any other) with
request id ``chain-<parent id>-<step>``, so a repeated resume finds the child it started
instead of starting a second run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from google.longrunning import operations_pb2
from google.protobuf import json_format, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from lro_server._proto.lro.databricks.v1 import chains_pb2, jobs_pb2
from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import ERROR_DOMAIN, Aborted, Code, Internal, LroError, Unavailable
from lro_server.core.record import OperationRecord
from lro_server.resume.method import (
    Advance,
    Failure,
    Resumption,
    derived_request_id,
    parent_of_request,
)

_log = logging.getLogger(__name__)

METHOD = "lro.databricks.v1.Chains/RunChain"
#: Request ids of chain children start with this.
CHILD_PREFIX = "chain-"
#: Default timeout of one step (as for Jobs methods), never beyond the chain's deadline.
DEFAULT_STEP_TIMEOUT_SECONDS = 20 * 60.0
State = chains_pb2.StepState.State
#: The records' ``family`` of chains (routes them to the resumer).
FAMILY = "chain"


@dataclasses.dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a chain, as requested.

    Attributes:
        name: The step's name (unique in the chain).
        kind: ``run_now`` or ``submit``: the Jobs method the step calls.
        request: That method's request in proto3 JSON (field names as in the proto).
        timeout_seconds: The step's own timeout (0: the default).
    """

    name: str
    kind: str
    request: dict[str, Any]
    timeout_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The step as a JSON object."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class ChainWork:
    """A chain's payload: its steps, in order."""

    steps: tuple[StepSpec, ...]

    def payload(self) -> str:
        """The stored form (the record's ``payload``)."""
        return json.dumps({"steps": [step.to_json() for step in self.steps]})

    @staticmethod
    def of(record: OperationRecord) -> ChainWork:
        """The chain of ``record`` (Internal when its payload is not a chain's)."""
        try:
            steps = json.loads(record.payload)["steps"]
            return ChainWork(
                tuple(
                    StepSpec(
                        name=str(step["name"]),
                        kind=str(step["kind"]),
                        request=dict(step["request"]),
                        timeout_seconds=float(step.get("timeout_seconds") or 0),
                    )
                    for step in steps
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise Internal(f"{record.name}: unreadable chain payload: {exc}") from exc


class StartChild(Protocol):
    """Starts one step's child operation (a Jobs method) on behalf of the chain's owner."""

    def __call__(
        self, step: StepSpec, *, owner: str, request_id: str, timeout_seconds: float
    ) -> Awaitable[operations_pb2.Operation]:
        """Start ``step``; return its operation."""
        ...


class ChainMethod:
    """The resumable method behind ``lro.databricks.v1.Chains/RunChain``."""

    method = METHOD
    resume_method = METHOD
    metadata_type = chains_pb2.ChainMetadata.DESCRIPTOR.full_name

    def __init__(self, start_child: StartChild, *, clock: Clock | None = None) -> None:
        self.start_child = start_child
        self.clock = clock or SystemClock()

    def initial(
        self, record: OperationRecord
    ) -> tuple[Mapping[str, Any], chains_pb2.ChainMetadata]:
        """Every step PENDING, none in progress."""
        steps = [
            chains_pb2.StepState(name=step.name, state=State.PENDING)
            for step in ChainWork.of(record).steps
        ]
        state = {"step": -1, "steps": [_dump(s) for s in steps], "runs": []}
        return state, self._metadata(record, state, current=-1)

    async def begin(self, parent: OperationRecord, state: Mapping[str, Any]) -> Advance:
        """Start the first step; a refusal (e.g. a bad request) fails the RunChain call."""
        return await self._start_step(parent, dict(state), 0, raise_errors=True)

    async def resume(self, resumption: Resumption) -> Advance:
        """Judge the step in progress, then start the next one or finish the chain."""
        parent = resumption.parent
        state = dict(resumption.state)
        index = int(state["step"])
        steps = _steps(state)
        step = steps[index]
        child = resumption.children.get(step.operation)
        label = _label(index, step.name)
        if child is None:
            return self._fail(
                parent,
                state,
                index,
                Code.ABORTED,
                f"{label}: its operation {step.operation} was deleted",
            )
        if not child.done:
            if resumption.waiter_failed:
                code, why = Code.UNAVAILABLE, "the waiter could not follow it"
            else:
                timeout = parent.timeout_seconds
                code, why = Code.DEADLINE_EXCEEDED, f"the chain's timeout of {timeout:g}s passed"
            message = f"{label} was cancelled: {why}"
            return self._fail(parent, state, index, code, message, cancel=(child.name,))
        observe_child(step, child)
        if child.operation.HasField("error"):
            error = child.operation.error
            code = Code(error.code) if error.code in Code._value2member_map_ else Code.UNKNOWN
            if resumption.cancel_requested and code == Code.CANCELLED:
                message = f"chain cancelled during {label}"
            else:
                message = f"{label} failed: {error.message}"
            step.state = State.CANCELLED if code == Code.CANCELLED else State.FAILED
            step.error.CopyFrom(error)
            _store(state, steps)
            return self._fail(parent, state, index, code, message)
        step.state = State.SUCCEEDED
        run = jobs_pb2.Run()
        if child.operation.response.Is(run.DESCRIPTOR):
            child.operation.response.Unpack(run)
        state["runs"] = [*state.get("runs", [])[:index], _dump(run)]
        _store(state, steps)
        if index + 1 == len(steps):
            return self._succeed(parent, state)
        if resumption.cancel_requested:
            return self._fail(
                parent,
                state,
                index + 1,
                Code.CANCELLED,
                f"chain cancelled after {label}",
                mark=False,
            )
        if resumption.timed_out:
            timeout = parent.timeout_seconds
            return self._fail(
                parent,
                state,
                index + 1,
                Code.DEADLINE_EXCEEDED,
                f"the chain's timeout of {timeout:g}s passed after {label}",
                mark=False,
            )
        return await self._start_step(parent, state, index + 1, raise_errors=False)

    # -- decisions -------------------------------------------------------------------------

    async def _start_step(
        self, parent: OperationRecord, state: dict[str, Any], index: int, *, raise_errors: bool
    ) -> Advance:
        spec = ChainWork.of(parent).steps[index]
        steps = _steps(state)
        remaining = (parent.deadline_us - self._now_us()) / 1e6
        asked = spec.timeout_seconds or DEFAULT_STEP_TIMEOUT_SECONDS
        try:
            child = await self.start_child(
                spec,
                owner=parent.owner,
                request_id=child_request_id(parent.name, index),
                timeout_seconds=max(1.0, min(asked, remaining)),
            )
        except LroError as exc:
            if raise_errors or isinstance(exc, (Unavailable, Aborted)):
                # A transient failure (the store, a write race) is not the step's outcome:
                # the resume fails and is retried; the child keeps its request id.
                raise
            message = f"{_label(index, steps[index].name)} could not start: {exc.message}"
            return self._fail(parent, state, index, exc.code, message)
        steps[index].state = State.RUNNING
        steps[index].operation = child.name
        steps[index].job_id = int(spec.request.get("job_id") or 0)
        state["step"] = index
        _store(state, steps)
        return Advance(
            state=state,
            metadata=self._metadata(parent, state, current=index),
            live_state="RUNNING",
            wait_on=(child.name,),
        )

    def _succeed(self, parent: OperationRecord, state: dict[str, Any]) -> Advance:
        result = chains_pb2.ChainResult()
        for step, run_json in zip(_steps(state), state["runs"], strict=True):
            run = json_format.ParseDict(run_json, jobs_pb2.Run())
            result.steps.add(name=step.name, operation=step.operation, run=run)
        return Advance(
            state=state,
            metadata=self._metadata(parent, state, current=-1, ended=True),
            live_state="SUCCEEDED",
            response=result,
        )

    def _fail(
        self,
        parent: OperationRecord,
        state: dict[str, Any],
        index: int,
        code: Code,
        message: str,
        *,
        cancel: tuple[str, ...] = (),
        mark: bool = True,
    ) -> Advance:
        steps = _steps(state)
        step = steps[index]
        if mark and step.state in (State.RUNNING, State.PENDING):
            step.state = State.CANCELLED if code == Code.CANCELLED else State.FAILED
            step.error.CopyFrom(status_pb2.Status(code=int(code), message=message))
        for other in steps:
            if other.state == State.PENDING:
                other.state = State.SKIPPED
        _store(state, steps)
        info = error_details_pb2.ErrorInfo(
            reason="CHAIN_CANCELLED" if code == Code.CANCELLED else "CHAIN_STEP_FAILED",
            domain=ERROR_DOMAIN,
            metadata={"step": step.name, "step_index": str(index), "operation": step.operation},
        )
        failed = step.name if step.state == State.FAILED else ""
        _log.info("%s: %s", parent.name, message)
        return Advance(
            state=state,
            metadata=self._metadata(parent, state, current=-1, ended=True, failed_step=failed),
            live_state="CANCELLED" if code == Code.CANCELLED else "FAILED",
            failure=Failure(code, message, (info,)),
            cancel=cancel,
        )

    def _metadata(
        self,
        record: OperationRecord,
        state: Mapping[str, Any],
        *,
        current: int,
        ended: bool = False,
        failed_step: str = "",
    ) -> chains_pb2.ChainMetadata:
        steps = _steps(state)
        now = _timestamp(self._now_us())
        metadata = chains_pb2.ChainMetadata(
            steps=steps,
            current_step=current,
            current_step_name=steps[current].name if current >= 0 else "",
            failed_step=failed_step,
            cancel_requested=record.cancel_requested,
            create_time=_timestamp(record.create_time_us),
            update_time=now,
            deadline=_timestamp(record.deadline_us),
        )
        if ended:
            metadata.end_time.CopyFrom(now)
        return metadata

    def _now_us(self) -> int:
        return to_micros(self.clock.now())


def child_request_id(parent: str, index: int) -> str:
    """The request id of step ``index``'s child: retried starts find the same child."""
    return derived_request_id(CHILD_PREFIX, parent, index)


def parent_of(child_request_id: str) -> tuple[str, int] | None:
    """(parent name, step index) named by a child's request id, or None for other ids."""
    return parent_of_request(CHILD_PREFIX, child_request_id)


def _label(index: int, name: str) -> str:
    return f'step {index + 1} "{name}"'


def observe_child(step: chains_pb2.StepState, child: OperationRecord) -> None:
    """Copy the run's ids and states from the child's metadata into the step."""
    metadata = jobs_pb2.RunMetadata()
    if child.operation.metadata.Is(metadata.DESCRIPTOR):
        child.operation.metadata.Unpack(metadata)
        step.run_id = metadata.run_id
        step.job_id = metadata.job_id or step.job_id
        step.run_page_url = metadata.run_page_url
        step.life_cycle_state = metadata.life_cycle_state
        step.result_state = metadata.result_state
        step.state_message = metadata.state_message


def _steps(state: Mapping[str, Any]) -> list[chains_pb2.StepState]:
    return [json_format.ParseDict(s, chains_pb2.StepState()) for s in state["steps"]]


def _store(state: dict[str, Any], steps: list[chains_pb2.StepState]) -> None:
    state["steps"] = [_dump(s) for s in steps]


def _dump(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _timestamp(micros: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp
