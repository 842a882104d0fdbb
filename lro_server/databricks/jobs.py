"""The jobs family: run-now, runs/submit, runs/repair, create+run and tracking a run (API 2.2).

run-now and runs/submit carry the operation id as Databricks' idempotency token. jobs/create
and runs/repair have none: the created job is tagged ``lro_operation_id`` and a retried start
finds it by name and tag; a retried repair adopts a repair made since the operation began.
A tracked run (TrackRun) is only read; runs followed together are observed through
runs/list pages (:mod:`~lro_server.databricks.jobs_walk`). When a run ends, each task's
output is fetched once (:mod:`~lro_server.databricks.jobs_output`); a failed run with a
repair policy is repaired first (:mod:`~lro_server.databricks.jobs_repair`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.message import Message
from google.rpc import error_details_pb2

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import ERROR_DOMAIN, Code, Internal
from lro_server.databricks import jobs_repair
from lro_server.databricks.client import Databricks, JsonDict
from lro_server.databricks.convert import OPERATION_TAG, millis, stamp_initial
from lro_server.databricks.family import PENDING, Observation, Tracked, Verdict
from lro_server.databricks.jobs_output import API, SUCCEEDED, failure_message, task_outputs
from lro_server.databricks.jobs_states import judge_run, progress_percent
from lro_server.databricks.jobs_walk import walk_runs
from lro_server.databricks.work import Entity, RepairAttempt, Work

_log = logging.getLogger(__name__)

#: Actions of this family and the REST path that starts each.
START_PATHS = {
    "run_now": f"{API}/run-now",
    "submit": f"{API}/runs/submit",
    "repair": f"{API}/runs/repair",
    "create_and_run": f"{API}/create",
    "track": f"{API}/runs/get",
}
#: Actions whose run (or job) this server creates: they get the webhook destination.
_NOTIFIED = ("submit", "create_and_run")
#: Events the webhook destination is attached to.
WEBHOOK_EVENTS = ("on_start", "on_success", "on_failure")
#: run-now fields of a CreateAndRun request (the rest is the jobs/create body).
RUN_FIELDS = ("job_parameters",)


def _tasks(run: Mapping[str, Any]) -> list[jobs_pb2.TaskState]:
    out = []
    for task in run.get("tasks") or []:
        state = task.get("state") or {}
        out.append(
            jobs_pb2.TaskState(
                task_key=str(task.get("task_key") or ""),
                run_id=int(task.get("run_id") or 0),
                life_cycle_state=str(state.get("life_cycle_state") or ""),
                result_state=str(state.get("result_state") or ""),
                state_message=str(state.get("state_message") or ""),
                run_page_url=str(task.get("run_page_url") or ""),
            )
        )
    return out


class JobsFamily:
    """Jobs RunNow / Submit / RepairRun / CreateAndRun / TrackRun.

    Args:
        clock: Wall time of repair delays and records.
        webhook_destination: Id of a Databricks notification destination attached to the
            runs submitted and the jobs created here ("" for none).
    """

    name = "jobs"

    def __init__(self, clock: Clock | None = None, webhook_destination: str = "") -> None:
        self._clock = clock or SystemClock()
        self._webhook = webhook_destination

    def _now_us(self) -> int:
        return to_micros(self._clock.now())

    def _notified(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the webhook destination added to its notifications."""
        if not self._webhook:
            return body
        hooks = dict(body.get("webhook_notifications") or {})
        for event in WEBHOOK_EVENTS:
            listed = list(hooks.get(event) or [])
            if not any(isinstance(h, Mapping) and h.get("id") == self._webhook for h in listed):
                listed.append({"id": self._webhook})
            hooks[event] = listed
        return {**body, "webhook_notifications": hooks}

    def initial_metadata(self, work: Work) -> Message:
        """RunMetadata of a run that has not started yet."""
        request = work.request
        meta = jobs_pb2.RunMetadata(
            job_id=int(request.get("job_id") or 0), tracked=work.action == "track"
        )
        if work.action == "track":
            meta.run_id = int(request.get("run_id") or 0)
        return stamp_initial(meta, work)

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """Start the run: run-now / runs/submit with the idempotency token, or repair, or
        create then run-now."""
        action = work.action
        path = START_PATHS.get(action)
        if path is None:
            raise Internal(f"unknown jobs action {action!r}")
        if action == "repair":
            return await self._repair(dbx, work, retry=retry)
        if action == "create_and_run":
            return await self._create_and_run(dbx, work, token, retry=retry)
        if action == "track":
            # Nothing starts: the run must exist (else Databricks' refusal is the answer).
            run_id = int(work.request["run_id"])
            run = await dbx.call("GET", path, query={"run_id": run_id})
            return Entity(run_id=run_id, job_id=int(run.get("job_id") or 0), tracked=True)
        body = {**work.request, "idempotency_token": token}
        if action in _NOTIFIED:
            body = self._notified(body)
        answer = await dbx.call("POST", path, body=body, idempotent=True)
        return Entity(run_id=int(answer["run_id"]))

    async def _repair(self, dbx: Databricks, work: Work, *, retry: bool) -> Entity:
        body = dict(work.request)
        run_id = int(body["run_id"])
        if retry or not body.get("latest_repair_id"):
            run = await dbx.call(
                "GET", f"{API}/runs/get", query={"run_id": run_id, "include_history": "true"}
            )
            repairs = jobs_repair.repairs_of(run)
            since = work.create_time_us // 1000
            if retry and repairs and int(repairs[-1].get("start_time") or 0) >= since > 0:
                return Entity(run_id=run_id, repair_id=int(repairs[-1]["id"]))
            if repairs and not body.get("latest_repair_id"):
                body["latest_repair_id"] = int(repairs[-1]["id"])
        answer = await dbx.call("POST", START_PATHS["repair"], body=body, idempotent=False)
        return Entity(run_id=run_id, repair_id=int(answer["repair_id"]))

    async def _create_and_run(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool
    ) -> Entity:
        request = self._notified(dict(work.request))
        run = {k: request.pop(k) for k in RUN_FIELDS if k in request}
        request["name"] = str(request.get("name") or f"lro-{token}")
        request["tags"] = {**(request.get("tags") or {}), OPERATION_TAG: token}
        job_id = await self._find_job(dbx, request["name"], token) if retry else 0
        if not job_id:
            answer = await dbx.call("POST", START_PATHS["create_and_run"], body=request)
            job_id = int(answer["job_id"])
        body = {**run, "job_id": job_id, "idempotency_token": token}
        answer = await dbx.call("POST", START_PATHS["run_now"], body=body, idempotent=True)
        return Entity(run_id=int(answer["run_id"]), job_id=job_id)

    async def _find_job(self, dbx: Databricks, name: str, token: str) -> int:
        listing = await dbx.call("GET", f"{API}/list", query={"name": name, "limit": 100})
        for job in listing.get("jobs") or []:
            if ((job.get("settings") or {}).get("tags") or {}).get(OPERATION_TAG) == token:
                return int(job["job_id"])
        return 0

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """GET runs/get and judge the run; at its end repair it (policy) or read its output."""
        if work.pending_repair is not None and not work.cancel_requested:
            return await self._repair_due(dbx, work, metadata)
        query: JsonDict = {"run_id": work.ids.run_id}
        if work.repair is not None:
            query["include_history"] = "true"  # the latest repair id, for a repair
        run = await dbx.call("GET", f"{API}/runs/get", query=query)
        observation = self.judge(run, metadata, work)
        if not observation.verdict.done:
            return observation
        if jobs_repair.qualifies(work, run, observation.verdict):
            repairs = jobs_repair.intend(work, run, self._now_us())
            return self._repairing(observation, repairs, "REPAIR_PENDING")
        outputs = await task_outputs(dbx, run)
        return self.finish(observation, outputs, jobs_repair.with_outcome(work, run))

    async def _repair_due(
        self, dbx: Databricks, work: Work, metadata: Message | None
    ) -> Observation:
        intent = work.pending_repair
        assert intent is not None and isinstance(metadata, jobs_pb2.RunMetadata)
        meta = jobs_pb2.RunMetadata()
        meta.CopyFrom(metadata)
        if self._now_us() < intent.not_before_us:
            return Observation(state="REPAIR_PENDING", metadata=meta, verdict=PENDING)
        repairs = await jobs_repair.repair(dbx, work, self._now_us())
        _log.info("run %s: repair %s requested", work.ids.run_id, repairs[-1].repair_id)
        observation = Observation(state="REPAIRING", metadata=meta, verdict=PENDING)
        return self._repairing(observation, repairs, "REPAIRING")

    def _repairing(
        self, observation: Observation, repairs: tuple[RepairAttempt, ...], state: str
    ) -> Observation:
        meta = observation.metadata
        assert isinstance(meta, jobs_pb2.RunMetadata)
        _show_repairs(meta, repairs)
        return Observation(state=state, metadata=meta, verdict=PENDING, repairs=repairs)

    def finish(
        self,
        observation: Observation,
        outputs: Sequence[jobs_pb2.TaskOutput],
        repairs: tuple[RepairAttempt, ...],
    ) -> Observation:
        """The final observation: outputs in the response, or the failing task's error."""
        meta = observation.metadata
        assert isinstance(meta, jobs_pb2.RunMetadata)
        _show_repairs(meta, repairs)
        response = observation.response
        if isinstance(response, jobs_pb2.Run):
            response.outputs.extend(outputs)
            response.repairs.extend(meta.repairs)
            return dataclasses.replace(observation, metadata=meta, repairs=repairs)
        failed_outputs = [o for o in outputs if o.result_state not in SUCCEEDED]
        verdict = observation.verdict
        if verdict.code != Code.CANCELLED:
            verdict = Verdict(True, verdict.code, failure_message(outputs, verdict.message))
        return dataclasses.replace(
            observation,
            metadata=meta,
            verdict=verdict,
            details=(*observation.details, *failed_outputs),
            repairs=repairs,
        )

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        """Observe tracked runs through runs/list pages (see :mod:`jobs_walk`); None for
        those the lists miss, to be read alone: runs neither walk showed, and ended runs
        with a repair policy (whether to repair is decided on runs/get, which has the
        repair history). An ended run's tasks are on the list, so only their outputs are
        read.
        """
        by_run = {work.ids.run_id: (work, meta) for work, meta in tracked}
        observed: dict[int, Observation] = {}
        # An ended run's outputs are read as soon as its page arrives, while the walk goes on.
        ending: dict[int, asyncio.Task[Observation]] = {}

        def seen(run: Mapping[str, Any]) -> None:
            run_id = int(run.get("run_id") or 0)
            work, metadata = by_run[run_id]
            observation = self.judge(run, metadata, work)
            if not observation.verdict.done:
                observed[run_id] = observation
            elif work.repair is None:  # with a policy, runs/get decides the repair
                ending[run_id] = asyncio.ensure_future(self._ended(dbx, run, observation))

        try:
            await walk_runs(dbx, [work for work, _ in tracked], seen)
            observed.update(zip(ending, await asyncio.gather(*ending.values()), strict=True))
        except BaseException:
            for task in ending.values():
                task.cancel()
            raise
        return [observed.get(work.ids.run_id) for work, _ in tracked]

    async def _ended(
        self, dbx: Databricks, run: Mapping[str, Any], observation: Observation
    ) -> Observation:
        """The final observation of an ended run as a list showed it: the listed run has
        its tasks (expand_tasks), so only their outputs are read."""
        return self.finish(observation, await task_outputs(dbx, run), ())

    def judge(
        self,
        run: Mapping[str, Any],
        metadata: Message | None,
        work: Work | None = None,
    ) -> Observation:
        """Observation of a runs/get (or runs/list item) body."""
        state = run.get("state") or {}
        previous = jobs_pb2.RunMetadata()
        if isinstance(metadata, jobs_pb2.RunMetadata):
            previous.CopyFrom(metadata)
        meta = jobs_pb2.RunMetadata()
        meta.CopyFrom(previous)
        meta.run_id = int(run.get("run_id") or previous.run_id)
        meta.job_id = int(run.get("job_id") or previous.job_id)
        meta.run_page_url = str(run.get("run_page_url") or previous.run_page_url)
        meta.life_cycle_state = str(state.get("life_cycle_state") or "")
        meta.result_state = str(state.get("result_state") or "")
        meta.state_message = str(state.get("state_message") or "")
        meta.status = str((run.get("status") or {}).get("state") or "")
        del meta.tasks[:]
        meta.tasks.extend(_tasks(run))
        meta.progress_percent = progress_percent(run)
        if work is not None:
            meta.repair_id = work.ids.repair_id
            meta.cancel_requested = work.cancel_requested
            meta.tracked = work.ids.tracked
            _show_repairs(meta, work.repairs)
        verdict = judge_run(run)
        live_state = meta.life_cycle_state or meta.status or "PENDING"
        if not verdict.done:
            return Observation(state=live_state, metadata=meta, verdict=verdict)
        end = millis(run.get("end_time"))
        if end is not None:
            meta.end_time.CopyFrom(end)
        if verdict.succeeded:
            response = jobs_pb2.Run(
                run_id=meta.run_id,
                job_id=meta.job_id,
                run_name=str(run.get("run_name") or ""),
                run_page_url=meta.run_page_url,
                life_cycle_state=meta.life_cycle_state,
                result_state=meta.result_state,
                state_message=meta.state_message,
                tasks=meta.tasks,
            )
            start = millis(run.get("start_time"))
            if start is not None:
                response.start_time.CopyFrom(start)
            if end is not None:
                response.end_time.CopyFrom(end)
            return Observation(state=live_state, metadata=meta, verdict=verdict, response=response)
        info = error_details_pb2.ErrorInfo(
            reason="DATABRICKS_RUN_" + (meta.result_state or meta.life_cycle_state or "FAILED"),
            domain=ERROR_DOMAIN,
            metadata={
                "run_id": str(meta.run_id),
                "run_page_url": meta.run_page_url,
                "life_cycle_state": meta.life_cycle_state,
                "result_state": meta.result_state,
            },
        )
        return Observation(state=live_state, metadata=meta, verdict=verdict, details=(info,))

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """POST runs/cancel (Databricks stops the run asynchronously; also a tracked run)."""
        body = {"run_id": work.ids.run_id}
        await dbx.call("POST", f"{API}/runs/cancel", body=body, idempotent=True)


def _show_repairs(meta: jobs_pb2.RunMetadata, repairs: Sequence[RepairAttempt]) -> None:
    """Every automatic repair in the metadata (the latest one's id as ``repair_id``)."""
    del meta.repairs[:]
    for attempt in repairs:
        shown = jobs_pb2.RepairAttempt(
            repair_id=attempt.repair_id,
            rerun_tasks=attempt.rerun_tasks,
            termination_type=attempt.termination_type,
            result_state=attempt.result_state,
        )
        if attempt.repair_time_us:
            shown.repair_time.FromMicroseconds(attempt.repair_time_us)
        meta.repairs.append(shown)
        if attempt.repair_id:
            meta.repair_id = attempt.repair_id
