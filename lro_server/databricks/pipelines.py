"""The pipelines family: Delta Live Tables StartUpdate and Stop as operations.

There is no idempotency token for starting an update, but Databricks refuses a second
concurrent update of a pipeline. After an ambiguous failure the server lists the pipeline's
updates and adopts one created since the operation began instead of starting another.
A failed update's message comes from the pipeline's ERROR events, where Databricks puts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.message import Message
from google.rpc import error_details_pb2

from lro_server._proto.lro.databricks.v1 import pipelines_pb2
from lro_server.core.errors import Internal, LroError
from lro_server.databricks.client import Databricks, JsonDict
from lro_server.databricks.convert import carry_over, error_info, stamp_initial, struct
from lro_server.databricks.family import Observation, Tracked, Verdict
from lro_server.databricks.paths import path_id
from lro_server.databricks.pipelines_states import judge_stop, judge_update
from lro_server.databricks.work import Entity, Work

API = "/api/2.0/pipelines"
#: Most exceptions of an ERROR event kept in a failure's details, and the longest text of one.
MAX_CAUSES = 10
CAUSE_CHARS = 2000


def _exception_text(exception: Mapping[str, Any]) -> str:
    """``class: message`` of one exception of a pipeline event (short class name)."""
    message = str(exception.get("message") or "")
    name = str(exception.get("class_name") or "").rsplit(".", 1)[-1]
    text = f"{name}: {message}" if name and message else message or name
    return text[:CAUSE_CHARS]


#: Most list pages read per batch, as a share of the operations it serves.
PAGES_PER_OPERATION = 0.25


def pipeline_url(host: str, pipeline_id: str, update_id: str = "") -> str:
    """Link to a pipeline (or one of its updates) in the workspace."""
    if not pipeline_id:
        return ""
    url = f"{host}/#joblist/pipelines/{pipeline_id}"
    return f"{url}/updates/{update_id}" if update_id else url


class PipelinesFamily:
    """Pipelines StartUpdate / Stop."""

    name = "pipelines"

    def initial_metadata(self, work: Work) -> Message:
        """PipelineMetadata before anything happened."""
        request = work.request
        meta = pipelines_pb2.PipelineMetadata(
            pipeline_id=str(request.get("pipeline_id") or ""),
            update_id=str(request.get("update_id") or ""),
        )
        return stamp_initial(meta, work)

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """Start an update or stop the pipeline."""
        action = work.action
        body = dict(work.request)
        pipeline_id = path_id(body.pop("pipeline_id"), "pipeline_id")
        if action == "stop":
            await dbx.call("POST", f"{API}/{pipeline_id}/stop", body={}, idempotent=True)
            return Entity(pipeline_id=pipeline_id)
        if action == "track_update":
            # Nothing starts: the update must exist (else Databricks' refusal is the answer).
            update_id = path_id(body["update_id"], "update_id")
            await dbx.call("GET", f"{API}/{pipeline_id}/updates/{update_id}")
            return Entity(pipeline_id=pipeline_id, update_id=update_id, tracked=True)
        if action != "start_update":
            raise Internal(f"unknown pipelines action {action!r}")
        if retry:
            adopted = await self._recent_update(dbx, pipeline_id, work.create_time_us // 1000)
            if adopted:
                return Entity(pipeline_id=pipeline_id, update_id=adopted)
        path = f"{API}/{pipeline_id}/updates"
        answer = await dbx.call("POST", path, body=body, idempotent=False)
        return Entity(pipeline_id=pipeline_id, update_id=str(answer["update_id"]))

    async def _recent_update(self, dbx: Databricks, pipeline_id: str, since_ms: int) -> str:
        listing = await dbx.call("GET", f"{API}/{pipeline_id}/updates", query={"max_results": 5})
        for update in listing.get("updates") or []:
            if int(update.get("creation_time") or 0) >= since_ms > 0:
                return str(update["update_id"])
        return ""

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """Read the update (StartUpdate) or the pipeline (Stop) and judge it."""
        entity = work.ids
        pipeline_id = entity.pipeline_id
        if entity.update_id:
            path = f"{API}/{pipeline_id}/updates/{entity.update_id}"
            update = (await dbx.call("GET", path)).get("update") or {}
            return await self.judge_update(dbx, work, update, metadata)
        pipeline = await dbx.call("GET", f"{API}/{pipeline_id}")
        return self.judge_pipeline(dbx.host, work, pipeline, metadata)

    async def observe_many(
        self, dbx: Databricks, tracked: Sequence[Tracked]
    ) -> list[Observation | None]:
        """One pipelines list walk: pipeline states and their latest updates."""
        seen: dict[str, JsonDict] = {}
        page_token = ""
        for _ in range(max(1, int(len(tracked) * PAGES_PER_OPERATION))):
            query: JsonDict = {"max_results": 100}
            if page_token:
                query["page_token"] = page_token
            listing = await dbx.call("GET", API, query=query)
            for status in listing.get("statuses") or []:
                seen[str(status.get("pipeline_id"))] = status
            page_token = str(listing.get("next_page_token") or "")
            if not page_token:
                break
        out: list[Observation | None] = []
        for work, metadata in tracked:
            entity = work.ids
            status = seen.get(entity.pipeline_id)
            observation: Observation | None = None
            if status is not None and entity.update_id:
                for update in status.get("latest_updates") or []:
                    if update.get("update_id") == entity.update_id:
                        state = str(update.get("state") or "")
                        if not judge_update(state, "").done:  # the end is read in full
                            observation = await self.judge_update(dbx, work, update, metadata)
            elif status is not None:
                observation = self.judge_pipeline(dbx.host, work, status, metadata)
            out.append(observation)
        return out

    async def judge_update(
        self,
        dbx: Databricks,
        work: Work,
        update: Mapping[str, Any],
        metadata: Message | None,
    ) -> Observation:
        """Observation of an update; a failed one's message is read from the events."""
        entity = work.ids
        meta = carry_over(pipelines_pb2.PipelineMetadata, metadata, work)
        meta.pipeline_id = entity.pipeline_id
        meta.update_id = entity.update_id
        meta.state = str(update.get("state") or "")
        meta.pipeline_url = pipeline_url(dbx.host, meta.pipeline_id, meta.update_id)
        verdict = judge_update(meta.state, "", what=f"update {meta.update_id}")
        state = meta.state or "PENDING"
        if not verdict.done:
            return Observation(state=state, metadata=meta, verdict=verdict)
        if verdict.succeeded:
            response = pipelines_pb2.PipelineUpdate(
                pipeline_id=meta.pipeline_id,
                update_id=meta.update_id,
                state=meta.state,
                pipeline_url=meta.pipeline_url,
                details=struct(update),
            )
            return Observation(state=state, metadata=meta, verdict=verdict, response=response)
        message, causes = await self._error_event(dbx, meta.pipeline_id, meta.update_id)
        if message:
            verdict = Verdict(True, verdict.code, message)
        meta.state_message = verdict.message
        info = error_info(
            "DATABRICKS_PIPELINE_UPDATE_" + meta.state,
            pipeline_id=meta.pipeline_id,
            update_id=meta.update_id,
            pipeline_url=meta.pipeline_url,
        )
        details: tuple[Message, ...] = (info,)
        if causes:
            details += (error_details_pb2.DebugInfo(stack_entries=causes, detail=message),)
        return Observation(state=state, metadata=meta, verdict=verdict, details=details)

    async def _error_event(
        self, dbx: Databricks, pipeline_id: str, update_id: str
    ) -> tuple[str, list[str]]:
        """The failure as Databricks' UI shows it: the ERROR event's first exception (with
        its class) as the message, every exception (bounded) as the causes."""
        try:
            events = await dbx.call(
                "GET",
                f"{API}/{pipeline_id}/events",
                query={"filter": "level='ERROR'", "max_results": 25},
            )
        except LroError:
            return "", []  # the state alone still tells the failure
        for event in events.get("events") or []:
            origin = event.get("origin") or {}
            if origin.get("update_id") not in (None, update_id):
                continue
            causes = [
                _exception_text(e)
                for e in ((event.get("error") or {}).get("exceptions") or [])[:MAX_CAUSES]
                if isinstance(e, dict)
            ]
            causes = [c for c in causes if c]
            message = causes[0] if causes else str(event.get("message") or "")
            if message:
                return message, causes
        return "", []

    def judge_pipeline(
        self,
        host: str,
        work: Work,
        pipeline: Mapping[str, Any],
        metadata: Message | None,
    ) -> Observation:
        """Observation of a pipeline body, for a Stop."""
        entity = work.ids
        meta = carry_over(pipelines_pb2.PipelineMetadata, metadata, work)
        meta.pipeline_id = entity.pipeline_id
        meta.state = meta.pipeline_state = str(pipeline.get("state") or "")
        meta.state_message = str(pipeline.get("cause") or "")
        meta.pipeline_url = pipeline_url(host, meta.pipeline_id)
        verdict = judge_stop(meta.state, meta.state_message, what=meta.pipeline_id)
        state = meta.state or "PENDING"
        if not verdict.done:
            return Observation(state=state, metadata=meta, verdict=verdict)
        if verdict.succeeded:
            response = pipelines_pb2.Pipeline(
                pipeline_id=meta.pipeline_id,
                name=str(pipeline.get("name") or ""),
                state=meta.state,
                pipeline_url=meta.pipeline_url,
                details=struct(pipeline),
            )
            return Observation(state=state, metadata=meta, verdict=verdict, response=response)
        info = error_info(
            "DATABRICKS_PIPELINE_" + meta.state,
            pipeline_id=meta.pipeline_id,
            pipeline_url=meta.pipeline_url,
        )
        return Observation(state=state, metadata=meta, verdict=verdict, details=(info,))

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """Stop the pipeline (its update ends CANCELED); a Stop has nothing to undo."""
        entity = work.ids
        if not entity.update_id:
            return
        await dbx.call("POST", f"{API}/{entity.pipeline_id}/stop", body={}, idempotent=True)
