"""The Jobs API (2.0/2.1/2.2): jobs, run-now, runs/submit, runs/get|list|cancel|repair."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .demo import DEMO_JOB, DEMO_JOB_ID
from .errors import ApiError, invalid_parameter, invalid_state
from .job_runs import RUN_PRESETS, JobRun, TaskRun, cancel_timeline, is_terminal
from .paging import page
from .routing import JSON, Route, SimRequest, api
from .task_graph import TaskSpec, levels, task_specs
from .timeline import Phase, Progress, Timeline
from .world import World

__all__ = ["JobsFamily"]

_VERSIONS = "2.0 2.1 2.2"
#: The task key of a run whose job or submit request names no tasks.
DEFAULT_TASK_KEY = "main"


@dataclass
class Job:
    """A job created with jobs/create."""

    job_id: int
    settings: JSON
    created_at: float
    runs: int = 0

    def task_specs(self) -> list[TaskSpec]:
        """Returns the job's tasks and dependencies (one default task when it declares none)."""
        return task_specs(self.settings.get("tasks") or []) or [(DEFAULT_TASK_KEY, ())]


def _missing_run(run_id: int) -> ApiError:
    # The SDK turns this message on runs/get into ResourceDoesNotExist (its override).
    return invalid_parameter(f"Run {run_id} does not exist.")


def _missing_job(job_id: int) -> ApiError:
    return invalid_parameter(f"Job {job_id} does not exist.")


class JobsFamily:
    """Jobs and their runs, with idempotency-token dedupe and timelines per job or name."""

    presets: Mapping[str, Mapping[str, Timeline]] = {"runs": RUN_PRESETS}

    def __init__(self, world: World) -> None:
        """Creates an empty family in ``world``."""
        self._world = world
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, JobRun] = {}
        self._tokens: dict[str, int] = {}
        self._task_runs: dict[int, int] = {}
        self._demo = False

    def reset(self) -> None:
        """Forgets every job and run (the demo job, if there was one, is created again)."""
        self.jobs.clear()
        self.runs.clear()
        self._tokens.clear()
        self._task_runs.clear()
        if self._demo:
            self.add_demo_job()

    def routes(self) -> list[Route]:
        """Returns the Jobs endpoints."""
        table = [
            ("POST", "jobs/create", self.create_job),
            ("GET", "jobs/get", self.get_job),
            ("GET", "jobs/list", self.list_jobs),
            ("POST", "jobs/delete", self.delete_job),
            ("POST", "jobs/run-now", self.run_now),
            ("POST", "jobs/runs/submit", self.submit),
            ("GET", "jobs/runs/get", self.get_run),
            ("GET", "jobs/runs/list", self.list_runs),
            ("POST", "jobs/runs/cancel", self.cancel_run),
            ("POST", "jobs/runs/repair", self.repair_run),
            ("GET", "jobs/runs/get-output", self.get_output),
        ]
        return [Route(method, api(_VERSIONS, rest), fn) for method, rest, fn in table]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves run ``entity_id`` to ``phase`` now (ends a held run)."""
        run = self.runs[int(entity_id)]
        run.progress.restart((phase,), self._world.now())

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

    # -- jobs -------------------------------------------------------------------------

    def create_job(self, req: SimRequest) -> JSON:
        """jobs/create: stores the settings, answers ``{"job_id"}``."""
        settings = {k: v for k, v in req.body.items() if k != "access_control_list"}
        tasks = settings.get("tasks") or []
        if not isinstance(tasks, list):
            raise invalid_parameter("tasks must be a list")
        task_specs(tasks)
        job = Job(self._world.new_id(), settings, req.now)
        self.jobs[job.job_id] = job
        self._world.record_created("jobs", job.job_id, name=settings.get("name"))
        return {"job_id": job.job_id}

    def add_demo_job(self) -> int:
        """Creates the demo job (id 1: ingest, then features and quality, then train)."""
        self.jobs[DEMO_JOB_ID] = Job(DEMO_JOB_ID, dict(DEMO_JOB), self._world.now())
        self._demo = True
        return DEMO_JOB_ID

    def _job(self, job_id: int) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise _missing_job(job_id)
        return job

    def _render_job(self, job: Job, with_tasks: bool = True) -> JSON:
        settings = dict(job.settings)
        if not with_tasks:
            settings.pop("tasks", None)
            settings.pop("job_clusters", None)
        return {
            "job_id": job.job_id,
            "creator_user_name": "simulator@example.com",
            "created_time": self._world.epoch_ms(job.created_at),
            "settings": settings,
        }

    def get_job(self, req: SimRequest) -> JSON:
        """jobs/get."""
        return self._render_job(self._job(req.require_int("job_id")))

    def list_jobs(self, req: SimRequest) -> JSON:
        """jobs/list: newest first, optional exact (case-insensitive) name filter."""
        name = req.opt_str("name")
        jobs = sorted(self.jobs.values(), key=lambda j: -j.job_id)
        if name is not None:
            jobs = [j for j in jobs if str(j.settings.get("name", "")).lower() == name.lower()]
        chunk, extra = page(jobs, req, default_limit=20, max_limit=100)
        expand = req.opt_bool("expand_tasks")
        out: JSON = {"jobs": [self._render_job(j, expand) for j in chunk], **extra}
        if not out["jobs"]:
            del out["jobs"]
        return out

    def delete_job(self, req: SimRequest) -> JSON:
        """jobs/delete."""
        job_id = req.require_int("job_id")
        self._job(job_id)
        del self.jobs[job_id]
        return {}

    # -- starting runs ----------------------------------------------------------------

    def _deduped(self, req: SimRequest) -> JobRun | None:
        token = req.opt_str("idempotency_token")
        if token is None:
            return None
        if len(token) > 64:
            raise invalid_parameter("idempotency_token must be at most 64 characters")
        run_id = self._tokens.get(token)
        return None if run_id is None else self.runs.get(run_id)

    def _start_run(
        self,
        req: SimRequest,
        *,
        job_id: int,
        run_name: str,
        run_type: str,
        number_in_job: int,
        specs: list[TaskSpec],
        selectors: list[tuple[str, object]],
    ) -> JobRun:
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
            job = self.jobs.get(job_id)
            notifications = req.get("webhook_notifications") or (
                job.settings.get("webhook_notifications") if job is not None else None
            )
            world.webhooks.watch(run, notifications)
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

    def run_now(self, req: SimRequest) -> JSON:
        """jobs/run-now: answers ``{"run_id", "number_in_job"}``; dedupes on the token."""
        job = self._job(req.require_int("job_id"))
        existing = self._deduped(req)
        if existing is not None:
            return {"run_id": existing.run_id, "number_in_job": existing.number_in_job}
        job.runs += 1
        name = str(job.settings.get("name") or f"job-{job.job_id}")
        run = self._start_run(
            req,
            job_id=job.job_id,
            run_name=name,
            run_type="JOB_RUN",
            number_in_job=job.runs,
            specs=job.task_specs(),
            selectors=[("job_id", job.job_id), ("run_name", name)],
        )
        return {"run_id": run.run_id, "number_in_job": run.number_in_job}

    def submit(self, req: SimRequest) -> JSON:
        """jobs/runs/submit: a one-time run; answers ``{"run_id"}``; dedupes on the token."""
        existing = self._deduped(req)
        if existing is not None:
            return {"run_id": existing.run_id}
        tasks = req.get("tasks") or []
        if not isinstance(tasks, list):
            raise invalid_parameter("tasks must be a list")
        specs = task_specs(tasks)
        name = req.opt_str("run_name") or "Untitled"
        # Databricks gives one-time runs a job id of their own, visible in the run page URL.
        job_id = self._world.new_id()
        run = self._start_run(
            req,
            job_id=job_id,
            run_name=name,
            run_type="SUBMIT_RUN",
            number_in_job=1,
            specs=specs or [(DEFAULT_TASK_KEY, ())],
            selectors=[("run_name", name)],
        )
        return {"run_id": run.run_id}

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
        if state.get("result_state") in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
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
                if task.get("state", {}).get("result_state")
                not in ("SUCCESS", "SUCCESS_WITH_FAILURES")
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
