"""The jobs family: run-now and runs/submit as operations (Databricks Jobs API 2.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.core.errors import ERROR_DOMAIN, Internal
from lro_server.databricks.client import Databricks, JsonDict
from lro_server.databricks.family import Observation
from lro_server.databricks.jobs_states import judge_run, progress_percent

API = "/api/2.2/jobs"
#: Actions of this family and the REST path that starts each.
START_PATHS = {"run_now": f"{API}/run-now", "submit": f"{API}/runs/submit"}


def _timestamp(micros: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def _millis(value: Any) -> timestamp_pb2.Timestamp | None:
    try:
        millis = int(value)
    except (TypeError, ValueError):
        return None
    return _timestamp(millis * 1000) if millis > 0 else None


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
    """Jobs RunNow / Submit."""

    name = "jobs"

    def initial_metadata(
        self, work: Mapping[str, Any], create_time_us: int, deadline_us: int
    ) -> Message:
        """RunMetadata of a run that has not started yet."""
        request = work.get("request") or {}
        return jobs_pb2.RunMetadata(
            job_id=int(request.get("job_id") or 0),
            create_time=_timestamp(create_time_us),
            update_time=_timestamp(create_time_us),
            deadline=_timestamp(deadline_us),
        )

    async def start(self, dbx: Databricks, work: Mapping[str, Any], token: str) -> JsonDict:
        """POST run-now or runs/submit with the operation's idempotency token."""
        action = str(work.get("action"))
        path = START_PATHS.get(action)
        if path is None:
            raise Internal(f"unknown jobs action {action!r}")
        body = {**(work.get("request") or {}), "idempotency_token": token}
        answer = await dbx.call("POST", path, body=body)
        return {"run_id": int(answer["run_id"])}

    async def observe(
        self, dbx: Databricks, work: Mapping[str, Any], metadata: Message | None
    ) -> Observation:
        """GET runs/get and judge the run."""
        run_id = int(work["entity"]["run_id"])
        run = await dbx.call("GET", f"{API}/runs/get", query={"run_id": run_id})
        return self.judge(run, metadata)

    def judge(self, run: Mapping[str, Any], metadata: Message | None) -> Observation:
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
        verdict = judge_run(run)
        live_state = meta.life_cycle_state or meta.status or "PENDING"
        if not verdict.done:
            return Observation(state=live_state, metadata=meta, verdict=verdict)
        end = _millis(run.get("end_time"))
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
            start = _millis(run.get("start_time"))
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

    async def cancel(self, dbx: Databricks, work: Mapping[str, Any]) -> None:
        """POST runs/cancel (Databricks stops the run asynchronously)."""
        await dbx.call("POST", f"{API}/runs/cancel", body={"run_id": int(work["entity"]["run_id"])})
