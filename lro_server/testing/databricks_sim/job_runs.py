"""Job runs: their timelines, presets and rendering as Databricks' Run JSON (2.1 and 2.2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .routing import JSON
from .task_graph import TaskSpec, downstream
from .timeline import Phase, Progress, Timeline

__all__ = ["RUN_PRESETS", "JobRun", "TaskRun", "is_terminal"]

#: Life cycle states after which a run never changes again (unless repaired).
TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
#: Result states that count as a task having done its work (repair does not rerun them).
SUCCEEDED = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})
#: The 2.2 ``status.state`` (RunLifecycleStateV2State) of each life cycle state; unknown
#: life cycle states are passed through unchanged so clients see an unknown value in both.
_V2_STATE = {
    "QUEUED": "QUEUED",
    "PENDING": "PENDING",
    "RUNNING": "RUNNING",
    "TERMINATING": "TERMINATING",
    "TERMINATED": "TERMINATED",
    "SKIPPED": "TERMINATED",
    "INTERNAL_ERROR": "TERMINATED",
    "BLOCKED": "BLOCKED",
    "WAITING_FOR_RETRY": "WAITING",
}
#: (termination code, termination type) of a terminal run, by result state.
_TERMINATION = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "SUCCESS_WITH_FAILURES": ("SUCCESS_WITH_FAILURES", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
    "UPSTREAM_FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "UPSTREAM_CANCELED": ("CANCELED", "SUCCESS"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
    "EXCLUDED": ("SKIPPED", "SUCCESS"),
    "DISABLED": ("DISABLED", "CLIENT_ERROR"),
}


def is_terminal(life_cycle_state: str) -> bool:
    """Tells whether a life cycle state is final."""
    return life_cycle_state in TERMINAL


def _p(state: str, seconds: float | None = None, **fields: Any) -> Phase:
    return Phase(state, seconds, fields)


_START = (_p("PENDING", 0.1), _p("RUNNING", 0.3))

#: Named timelines for runs. Phase fields understood: ``result_state``, ``state_message``,
#: ``failing_task`` (task key; default the first task), ``task_message`` (that task's own
#: message), ``user_cancelled_or_timedout``, ``termination_code``, ``termination_type``,
#: ``notebook_result`` (get-output), ``omit_state`` / ``omit_status`` (leave the key out).
RUN_PRESETS: Mapping[str, Timeline] = {
    "default": (*_START, _p("TERMINATED", result_state="SUCCESS", state_message="")),
    "success": (*_START, _p("TERMINATED", result_state="SUCCESS", state_message="")),
    "failed": (
        *_START,
        _p(
            "TERMINATED",
            result_state="FAILED",
            state_message="Workload failed, see run output for details",
            task_message="AssertionError: the input table is empty",
        ),
    ),
    "internal_error": (
        *_START,
        _p(
            "INTERNAL_ERROR",
            result_state="FAILED",
            state_message="Task failed with an internal error. See the task run for details.",
            task_message="Could not reach driver of cluster 0101-000000-sim.",
            termination_code="DRIVER_ERROR",
            termination_type="INTERNAL_ERROR",
        ),
    ),
    "skipped": (
        _p("PENDING", 0.1),
        _p(
            "SKIPPED",
            state_message="Skipping this run because the maximum number of concurrent runs "
            "was reached.",
            termination_code="MAX_CONCURRENT_RUNS_EXCEEDED",
            termination_type="CLIENT_ERROR",
        ),
    ),
    "timedout": (
        *_START,
        _p(
            "TERMINATED",
            result_state="TIMEDOUT",
            state_message="Run timed out.",
            user_cancelled_or_timedout=True,
        ),
    ),
    "hold": (_p("PENDING", 0.1), _p("RUNNING")),
    "no_state": (
        _p("RUNNING", 0.3, omit_state=True, omit_status=True),
        _p("TERMINATED", result_state="SUCCESS", state_message=""),
    ),
    "unknown_state": (
        _p("BLOCKED_NEW_STATE", 0.3),
        _p("TERMINATED", result_state="SUCCESS", state_message=""),
    ),
}

#: How a cancelled run ends: TERMINATING for a moment, then TERMINATED/CANCELED.
CANCEL_SECONDS = 0.1
#: A task waiting for its upstream tasks.
BLOCKED = _p("BLOCKED", state_message="Waiting for upstream tasks to finish.")
#: A task whose work is done (its run goes on with the next tasks).
TASK_DONE = _p("TERMINATED", result_state="SUCCESS", state_message="")
#: A task that never ran because a task it depends on failed.
UPSTREAM_FAILED = _p(
    "TERMINATED",
    result_state="UPSTREAM_FAILED",
    state_message="Skipped because an upstream task failed.",
)


def cancel_timeline() -> Timeline:
    """Returns the phases of a run after runs/cancel."""
    return (
        _p("TERMINATING", CANCEL_SECONDS, state_message="Run cancellation requested."),
        _p(
            "TERMINATED",
            result_state="CANCELED",
            state_message="Run cancelled.",
            user_cancelled_or_timedout=True,
        ),
    )


@dataclass
class TaskRun:
    """One task of a run.

    Attributes:
        task_key: The task's key.
        run_id: The task run's id (a repaired task gets a new one).
        attempt_number: 0 for the first attempt.
        frozen: The task's final rendering when a repair did not rerun it.
    """

    task_key: str
    run_id: int
    attempt_number: int = 0
    frozen: JSON | None = None
    level: int = 0


@dataclass
class JobRun:
    """A job run (from run-now or runs/submit)."""

    run_id: int
    job_id: int
    run_name: str
    run_type: str
    number_in_job: int
    tasks: list[TaskRun]
    progress: Progress
    created_at: float
    idempotency_token: str | None = None
    repairs: list[tuple[int, float]] = field(default_factory=list)
    parameters: JSON = field(default_factory=dict)
    #: The tasks' keys and dependencies (see task_graph).
    specs: list[TaskSpec] = field(default_factory=list)
    #: How long each task runs; None: a RUNNING phase is shared out among the levels.
    task_seconds: float | None = None
    #: How the run ends when it is released from a hold.
    ending: Phase = field(default_factory=lambda: _p("TERMINATED", result_state="SUCCESS"))

    @property
    def depth(self) -> int:
        """Number of levels of tasks (1 without dependencies)."""
        return 1 + max((t.level for t in self.tasks), default=0)

    def held(self, now: float) -> bool:
        """Whether the run waits, or will wait, in a phase without end (until released or
        cancelled)."""
        phase = self.phase(now)[0]
        if is_terminal(phase.state):
            return False
        return phase.seconds is None or not is_terminal(self.progress.phases[-1].state)

    def phase(self, now: float) -> tuple[Phase, float]:
        """Returns the current phase and when it began."""
        return self.progress.position(now)

    def life_cycle(self, now: float) -> str:
        """Returns the current life cycle state."""
        return self.progress.current(now).state

    def render(
        self,
        now: float,
        url: str,
        epoch_ms: Callable[[float], int],
        *,
        with_tasks: bool = True,
        with_history: bool = False,
    ) -> JSON:
        """Returns the run as runs/get (and runs/list) answer it."""
        phase, began = self.phase(now)
        terminal = is_terminal(phase.state)
        out: JSON = {
            "job_id": self.job_id,
            "run_id": self.run_id,
            "original_attempt_run_id": self.run_id,
            "run_name": self.run_name,
            "number_in_job": self.number_in_job,
            "attempt_number": 0,
            "run_type": self.run_type,
            "format": "MULTI_TASK",
            "creator_user_name": "simulator@example.com",
            "start_time": epoch_ms(self.created_at),
            # Databricks sends 0 for a run that has not ended yet.
            "end_time": epoch_ms(began) if terminal else 0,
            "setup_duration": 0,
            "execution_duration": 0,
            "cleanup_duration": 0,
            "run_page_url": f"{url}/#job/{self.job_id}/run/{self.run_id}",
        }
        if self.parameters:
            out["job_parameters"] = [
                {"name": k, "value": str(v)} for k, v in self.parameters.items()
            ]
        out.update(_state_keys(phase, None))
        if with_tasks:
            out["tasks"] = [self._render_task(t, now, url, epoch_ms) for t in self.tasks]
        if with_history:
            out["repair_history"] = self._history(epoch_ms)
        return out

    def task_states(self, now: float, url: str, epoch_ms: Callable[[float], int]) -> list[JSON]:
        """Returns each task's rendering at ``now``."""
        return [self._render_task(t, now, url, epoch_ms) for t in self.tasks]

    def _failing_task(self, phase: Phase) -> str | None:
        result = phase.fields.get("result_state")
        if not is_terminal(phase.state) or result is None or result in SUCCEEDED:
            return None
        if result in ("CANCELED", "TIMEDOUT", "UPSTREAM_CANCELED"):
            return None
        key = phase.fields.get("failing_task")
        if key is None:  # the first task to run
            live = [t for t in self.tasks if t.frozen is None]
            key = min(live or self.tasks, key=lambda t: t.level).task_key
        return str(key)

    def _task_phase(self, task: TaskRun, phase: Phase, began: float, now: float) -> Phase:
        failing = self._failing_task(phase)
        if failing is not None:
            if task.task_key == failing:
                message = phase.fields.get("task_message", phase.fields.get("state_message", ""))
                return Phase(phase.state, None, {**phase.fields, "state_message": message})
            if task.task_key in downstream(self.specs, failing):
                return UPSTREAM_FAILED
            # The other tasks of a run with one failing task did their work.
            return Phase("TERMINATED", None, {"result_state": "SUCCESS"})
        if phase.state != "RUNNING":
            return phase
        # Levels run one after the other, each for the same share of the RUNNING phase.
        seconds = self.task_seconds
        if seconds is None and phase.seconds is not None:
            seconds = phase.seconds / self.depth
        if seconds is None:
            return phase if task.level == 0 else BLOCKED
        elapsed = now - began
        if elapsed < task.level * seconds:
            return BLOCKED
        last = task.level == self.depth - 1
        if elapsed < (task.level + 1) * seconds or (last and phase.seconds is None):
            return phase
        return TASK_DONE

    def _render_task(
        self, task: TaskRun, now: float, url: str, epoch_ms: Callable[[float], int]
    ) -> JSON:
        if task.frozen is not None:
            return dict(task.frozen)
        phase, began = self.phase(now)
        task_phase = self._task_phase(task, phase, began, now)
        out: JSON = {
            "task_key": task.task_key,
            "run_id": task.run_id,
            "attempt_number": task.attempt_number,
            "start_time": epoch_ms(self.created_at),
            "end_time": epoch_ms(began) if is_terminal(phase.state) else 0,
            "run_page_url": f"{url}/#job/{self.job_id}/run/{task.run_id}",
        }
        upstream = dict(self.specs).get(task.task_key, ())
        if upstream:
            out["depends_on"] = [{"task_key": key} for key in upstream]
        out.update(_state_keys(task_phase, phase))
        return out

    def _history(self, epoch_ms: Callable[[float], int]) -> list[JSON]:
        history: list[JSON] = [
            {"type": "ORIGINAL", "start_time": epoch_ms(self.created_at)},
        ]
        for repair_id, at in self.repairs:
            history.append({"type": "REPAIR", "id": repair_id, "start_time": epoch_ms(at)})
        return history


def _state_keys(phase: Phase, parent: Phase | None) -> JSON:
    """Returns the ``state`` and ``status`` keys for a phase (absent when told to omit)."""
    fields = phase.fields
    omit_from = parent if parent is not None else phase
    out: JSON = {}
    if not omit_from.fields.get("omit_state"):
        state: JSON = {
            "life_cycle_state": phase.state,
            "state_message": str(fields.get("state_message", "")),
            "user_cancelled_or_timedout": bool(fields.get("user_cancelled_or_timedout", False)),
        }
        if fields.get("result_state") is not None:
            state["result_state"] = fields["result_state"]
        out["state"] = state
    if not omit_from.fields.get("omit_status"):
        status: JSON = {"state": _V2_STATE.get(phase.state, phase.state)}
        if is_terminal(phase.state):
            status["termination_details"] = _termination(phase)
        out["status"] = status
    return out


def _termination(phase: Phase) -> JSON:
    fields = phase.fields
    result = fields.get("result_state")
    if phase.state == "SKIPPED":
        code, kind = "SKIPPED", "SUCCESS"
    elif phase.state == "INTERNAL_ERROR":
        code, kind = "INTERNAL_ERROR", "INTERNAL_ERROR"
    else:
        code, kind = _TERMINATION.get(str(result), ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
    return {
        "code": fields.get("termination_code", code),
        "type": fields.get("termination_type", kind),
        "message": str(fields.get("state_message", "")),
    }
