"""The Jobs API (2.0/2.1/2.2): jobs, and the two ways to start a run (run-now, runs/submit);
the runs themselves are in ``run_book``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .demo import DEMO_JOB, DEMO_JOB_ID
from .errors import ApiError, invalid_parameter
from .job_runs import RUN_PRESETS
from .paging import page
from .routing import JSON, Route, SimRequest, api
from .run_book import RunBook
from .task_graph import TaskSpec, task_specs
from .timeline import Phase, Timeline
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


def _missing_job(job_id: int) -> ApiError:
    return invalid_parameter(f"Job {job_id} does not exist.")


class JobsFamily:
    """Jobs and their runs, with idempotency-token dedupe and timelines per job or name."""

    presets: Mapping[str, Mapping[str, Timeline]] = {"runs": RUN_PRESETS}

    def __init__(self, world: World) -> None:
        """Creates an empty family in ``world``."""
        self._world = world
        self.jobs: dict[int, Job] = {}
        self.runs = RunBook(world)
        self._demo = False

    def reset(self) -> None:
        """Forgets every job and run (the demo job, if there was one, is created again)."""
        self.jobs.clear()
        self.runs.reset()
        if self._demo:
            self.add_demo_job()

    def routes(self) -> list[Route]:
        """Returns the Jobs endpoints."""
        runs = self.runs
        table = [
            ("POST", "jobs/create", self.create_job),
            ("GET", "jobs/get", self.get_job),
            ("GET", "jobs/list", self.list_jobs),
            ("POST", "jobs/delete", self.delete_job),
            ("POST", "jobs/run-now", self.run_now),
            ("POST", "jobs/runs/submit", self.submit),
            ("GET", "jobs/runs/get", runs.get_run),
            ("GET", "jobs/runs/list", runs.list_runs),
            ("POST", "jobs/runs/cancel", runs.cancel_run),
            ("POST", "jobs/runs/repair", runs.repair_run),
            ("GET", "jobs/runs/get-output", runs.get_output),
        ]
        return [Route(method, api(_VERSIONS, rest), fn) for method, rest, fn in table]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves run ``entity_id`` to ``phase`` now (ends a held run)."""
        self.runs.finish(int(entity_id), phase)

    def release(self, run_id: int | None = None) -> list[int]:
        """Ends held runs (one, or all) the way each was drawn; returns their ids.

        Raises:
            KeyError: No such run.
            ValueError: The run named is not held.
        """
        return self.runs.release(run_id)

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

    def run_now(self, req: SimRequest) -> JSON:
        """jobs/run-now: answers ``{"run_id", "number_in_job"}``; dedupes on the token."""
        job = self._job(req.require_int("job_id"))
        existing = self.runs.deduped(req)
        if existing is not None:
            return {"run_id": existing.run_id, "number_in_job": existing.number_in_job}
        job.runs += 1
        name = str(job.settings.get("name") or f"job-{job.job_id}")
        run = self.runs.start(
            req,
            job_id=job.job_id,
            run_name=name,
            run_type="JOB_RUN",
            number_in_job=job.runs,
            specs=job.task_specs(),
            selectors=[("job_id", job.job_id), ("run_name", name)],
            job_notifications=job.settings.get("webhook_notifications"),
        )
        return {"run_id": run.run_id, "number_in_job": run.number_in_job}

    def submit(self, req: SimRequest) -> JSON:
        """jobs/runs/submit: a one-time run; answers ``{"run_id"}``; dedupes on the token."""
        existing = self.runs.deduped(req)
        if existing is not None:
            return {"run_id": existing.run_id}
        tasks = req.get("tasks") or []
        if not isinstance(tasks, list):
            raise invalid_parameter("tasks must be a list")
        specs = task_specs(tasks)
        name = req.opt_str("run_name") or "Untitled"
        # Databricks gives one-time runs a job id of their own, visible in the run page URL.
        job_id = self._world.new_id()
        run = self.runs.start(
            req,
            job_id=job_id,
            run_name=name,
            run_type="SUBMIT_RUN",
            number_in_job=1,
            specs=specs or [(DEFAULT_TASK_KEY, ())],
            selectors=[("run_name", name)],
        )
        return {"run_id": run.run_id}
