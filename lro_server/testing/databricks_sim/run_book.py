"""The runs of the Jobs API: started (deduped on the idempotency token), read, cancelled,
repaired (runs/get, runs/list, runs/get-output, runs/cancel, runs/repair)."""

from __future__ import annotations

from typing import Any

from .errors import ApiError, invalid_parameter, invalid_state
from .job_runs import RUN_PRESETS, SUCCEEDED, JobRun, TaskRun, cancel_timeline, is_terminal
from .paging import page
from .routing import JSON, SimRequest
from .task_graph import TaskSpec, levels
from .timeline import Phase, Progress
from .world import World

__all__ = ["RunBook"]


def _missing_run(run_id: int) -> ApiError:
    # The SDK turns this message on runs/get into ResourceDoesNotExist (its override).
    return invalid_parameter(f"Run {run_id} does not exist.")


class RunBook:
    """Every run of the simulated workspace, by run id, and the endpoints that read and
    change them; the jobs family starts them."""

    def __init__(self, world: World) -> None:
        """Creates an empty book in ``world``."""
        self._world = world
        self.runs: dict[int, JobRun] = {}
        self._tokens: dict[str, int] = {}
        self._task_runs: dict[int, int] = {}

    def reset(self) -> None:
        """Forgets every run."""
        self.runs.clear()
        self._tokens.clear()
        self._task_runs.clear()

    def finish(self, run_id: int, phase: Phase) -> None:
        """Moves run ``run_id`` to ``phase`` now (ends a held run)."""
        self.runs[run_id].progress.restart((phase,), self._world.now())

    def release(self, run_id: int | None = None) -> list[int]:
        """Ends held runs (one, or all) the way each was drawn; returns their ids.

        Raises:
            KeyError: No such run.
            ValueError: The run named is not held.
        """
        now = self._world.now()
        if run_id is not None:
            run = self.runs[run_id]
            if not run.held(now):
                raise ValueError(f"run {run_id} is not held")
            chosen = [run]
        else:
            chosen = [run for run in self.runs.values() if run.held(now)]
        for run in chosen:
            run.progress.restart((run.ending,), now)
        return sorted(run.run_id for run in chosen)

    # -- starting runs ----------------------------------------------------------------

    def deduped(self, req: SimRequest) -> JobRun | None:
        """The run started earlier with the request's idempotency token, if any.

        Raises:
            ApiError: The token is longer than Databricks accepts.
        """
        token = req.opt_str("idempotency_token")
        if token is None:
            return None
        if len(token) > 64:
            raise invalid_parameter("idempotency_token must be at most 64 characters")
        run_id = self._tokens.get(token)
        return None if run_id is None else self.runs.get(run_id)

    def start(
        self,
        req: SimRequest,
        *,
        job_id: int,
        run_name: str,
        run_type: str,
        number_in_job: int,
        specs: list[TaskSpec],
        selectors: list[tuple[str, object]],
        job_notifications: Any = None,
    ) -> JobRun:
        """Starts a run of ``specs`` on the timeline configured for ``selectors`` (else
        the run behaviour's, else the preset's); webhooks as the request, else the job
        (``job_notifications``), asks."""
        world = self._world
        level = levels(specs)
        run_id = world.new_id()
        tasks = [TaskRun(key, world.new_id(), level=level[key]) for key, _ in specs]
        depth = 1 + max(level.values(), default=0)
        timeline = world.configured_timeline("runs", selectors)
        behaviour = world.behaviour
        task_seconds: float | None = None
        ending = Phase("TERMINATED", None, {"result_state": "SUCCESS", "state_message": ""})
        if timeline is None and behaviour.configured:
            first = min(tasks, key=lambda t: t.level).task_key
            ending = behaviour.ending(world.rng, first)
            timeline = behaviour.timeline(ending, depth)
            task_seconds = behaviour.task_seconds
        elif timeline is None:
            timeline = RUN_PRESETS["default"]
        run = JobRun(
            run_id=run_id,
            job_id=job_id,
            run_name=run_name,
            run_type=run_type,
            number_in_job=number_in_job,
            tasks=tasks,
            progress=Progress(timeline, req.now),
            created_at=req.now,
            idempotency_token=req.opt_str("idempotency_token"),
            parameters=dict(req.get("job_parameters") or req.get("notebook_params") or {}),
            specs=specs,
            task_seconds=task_seconds,
            ending=ending,
        )
        self.runs[run.run_id] = run
        if world.webhooks is not None:
            world.webhooks.watch(run, req.get("webhook_notifications") or job_notifications)
        for task in tasks:
            self._task_runs[task.run_id] = run.run_id
        if run.idempotency_token is not None:
            self._tokens[run.idempotency_token] = run.run_id
        world.record_created(
            "runs",
            run.run_id,
            job_id=job_id,
            run_name=run_name,
            idempotency_token=run.idempotency_token,
        )
        return run

    # -- reading runs -----------------------------------------------------------------

    def _run(self, run_id: int) -> JobRun:
        run = self.runs.get(run_id)
        if run is None:
            raise _missing_run(run_id)
        return run

    def render(self, run: JobRun, now: float, **kwargs: Any) -> JSON:
        """Returns the runs/get JSON of ``run`` at ``now``."""
        return run.render(now, self._world.url, self._world.epoch_ms, **kwargs)

    def get_run(self, req: SimRequest) -> JSON:
        """jobs/runs/get: every task on one page, so never a ``next_page_token``."""
        run = self._run(req.require_int("run_id"))
        return self.render(run, req.now, with_history=req.opt_bool("include_history"))

    def list_runs(self, req: SimRequest) -> JSON:
        """jobs/runs/list: newest first; active_only, completed_only, job_id, run_type."""
        active_only = req.opt_bool("active_only")
        completed_only = req.opt_bool("completed_only")
        if active_only and completed_only:
            raise invalid_parameter("active_only and completed_only cannot both be true")
        job_id = req.opt_int("job_id")
        run_type = req.opt_str("run_type")
        start_from = req.opt_int("start_time_from")
        start_to = req.opt_int("start_time_to")
        runs = []
        for run in sorted(self.runs.values(), key=lambda r: (-r.created_at, -r.run_id)):
            terminal = is_terminal(run.life_cycle(req.now))
            started = self._world.epoch_ms(run.created_at)
            if (active_only and terminal) or (completed_only and not terminal):
                continue
            if job_id is not None and run.job_id != job_id:
                continue
            if run_type is not None and run.run_type != run_type:
                continue
            if (start_from is not None and started < start_from) or (
                start_to is not None and started > start_to
            ):
                continue
            runs.append(run)
        chunk, extra = page(runs, req, default_limit=20, max_limit=25, zero_means_max=True)
        expand = req.opt_bool("expand_tasks")
        out: JSON = {**extra}
        if chunk:
            out["runs"] = [self.render(r, req.now, with_tasks=expand) for r in chunk]
        return out

    def get_output(self, req: SimRequest) -> JSON:
        """jobs/runs/get-output of a task run (or of a run with a single task)."""
        run_id = req.require_int("run_id")
        parent_id = self._task_runs.get(run_id, run_id)
        run = self._run(parent_id)
        if parent_id == run_id:
            if len(run.tasks) != 1:
                raise invalid_parameter(
                    "Retrieving the output of runs with multiple tasks is not supported. "
                    "Please retrieve the output of each individual task run instead."
                )
            run_id = run.tasks[0].run_id
        rendered = self.render(run, req.now)
        task = next(t for t in rendered["tasks"] if t["run_id"] == run_id)
        phase, _ = run.phase(req.now)
        out: JSON = {"metadata": {**rendered, "run_id": run_id, "tasks": [task]}}
        state = task.get("state", {})
        if state.get("result_state") in SUCCEEDED:
            result = phase.fields.get("notebook_result")
            out["notebook_output"] = {"truncated": False}
            if result is not None:
                out["notebook_output"]["result"] = str(result)
        elif state.get("result_state") is not None or state.get("life_cycle_state") in (
            "INTERNAL_ERROR",
        ):
            out["error"] = state.get("state_message", "")
            out["error_trace"] = f"Traceback (most recent call last):\n  {out['error']}"
        return out

    # -- changing runs ----------------------------------------------------------------

    def cancel_run(self, req: SimRequest) -> JSON:
        """jobs/runs/cancel: asynchronous; the run goes TERMINATING, then CANCELED."""
        run = self._run(req.require_int("run_id"))
        if not is_terminal(run.life_cycle(req.now)):
            run.progress.restart(cancel_timeline(), req.now)
        return {}

    def repair_run(self, req: SimRequest) -> JSON:
        """jobs/runs/repair: reruns failed (or named) tasks of a finished run."""
        run = self._run(req.require_int("run_id"))
        if not is_terminal(run.life_cycle(req.now)):
            raise invalid_state(
                f"Run {run.run_id} is still active. Only runs in a terminal state can be repaired."
            )
        latest = req.opt_int("latest_repair_id")
        if run.repairs and latest != run.repairs[-1][0]:
            raise invalid_parameter(
                f"The latest repair ID of run {run.run_id} is {run.repairs[-1][0]}; "
                f"latest_repair_id must be set to it (got {latest})."
            )
        if not run.repairs and latest is not None:
            raise invalid_parameter(f"Run {run.run_id} has no repair with id {latest}.")
        tasks = {
            t["task_key"]: t
            for t in run.task_states(req.now, self._world.url, self._world.epoch_ms)
        }
        named = req.get("rerun_tasks") or []
        unknown = [k for k in named if k not in tasks]
        if unknown:
            raise invalid_parameter(f"Tasks not found in run {run.run_id}: {unknown}")
        rerun = set(named)
        if req.opt_bool("rerun_all_failed_tasks"):
            rerun |= {
                key
                for key, task in tasks.items()
                if task.get("state", {}).get("result_state") not in SUCCEEDED
            }
        if not rerun:
            raise invalid_parameter("Either rerun_tasks or rerun_all_failed_tasks must be set.")
        for task in run.tasks:
            if task.task_key in rerun:
                task.frozen = None
                task.run_id = self._world.new_id()
                self._task_runs[task.run_id] = run.run_id
            else:
                task.frozen = tasks[task.task_key]
        timeline = self._world.timeline_for(
            "runs", [("job_id", run.job_id), ("run_name", run.run_name)]
        )
        run.progress.restart(timeline, req.now)
        repair_id = self._world.new_id()
        run.repairs.append((repair_id, req.now))
        self._world.record_created("repairs", repair_id, run_id=run.run_id, tasks=sorted(rerun))
        return {"repair_id": repair_id}
