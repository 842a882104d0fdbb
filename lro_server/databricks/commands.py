"""The command execution family (API 1.2): run a command, creating its context if needed.

Execute starts at once: it sends the command when given a context, or creates a context and
returns. The tracker then waits for the context to be Running, sends the command (the new
command id is stored with the operation), follows it, and destroys the context it created.
Neither contexts/create nor commands/execute has an idempotency token nor a list: after an
ambiguous failure they are sent again, so a command may run twice (documented).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import commands_pb2
from lro_server.core.errors import Code, LroError
from lro_server.databricks.client import Databricks
from lro_server.databricks.clusters import cluster_url
from lro_server.databricks.commands_states import MAX_MESSAGE, judge_command, judge_context
from lro_server.databricks.convert import carry_over, error_info, stamp_initial, struct, value
from lro_server.databricks.family import PENDING, Observation, Verdict
from lro_server.databricks.states import Outcome
from lro_server.databricks.work import Entity, Work

_log = logging.getLogger(__name__)

API = "/api/1.2"


def _ids(work: Work) -> dict[str, str]:
    entity = work.ids
    ids = {"clusterId": entity.cluster_id, "contextId": entity.context_id}
    if entity.command_id:
        ids["commandId"] = entity.command_id
    return ids


class CommandsFamily:
    """CommandExecution Execute."""

    name = "commands"

    def initial_metadata(self, work: Work) -> Message:
        """CommandMetadata before anything happened."""
        request = work.request
        meta = commands_pb2.CommandMetadata(
            cluster_id=str(request.get("cluster_id") or ""),
            context_id=str(request.get("context_id") or ""),
        )
        return stamp_initial(meta, work)

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """Send the command, or create its context first."""
        request = work.request
        cluster_id = str(request["cluster_id"])
        language = str(request.get("language") or "python")
        context_id = str(request.get("context_id") or "")
        if context_id:
            entity = Entity(cluster_id=cluster_id, context_id=context_id)
            command_id = await self._execute(dbx, work, entity)
            return dataclasses.replace(entity, command_id=command_id)
        answer = await dbx.call(
            "POST",
            f"{API}/contexts/create",
            body={"clusterId": cluster_id, "language": language},
            idempotent=False,
        )
        return Entity(cluster_id=cluster_id, context_id=str(answer["id"]), created_context=True)

    async def _execute(self, dbx: Databricks, work: Work, entity: Entity) -> str:
        request = work.request
        body = {
            "clusterId": entity.cluster_id,
            "contextId": entity.context_id,
            "language": str(request.get("language") or "python"),
            "command": str(request.get("command") or ""),
        }
        answer = await dbx.call("POST", f"{API}/commands/execute", body=body, idempotent=False)
        return str(answer["id"])

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """Wait for the context, send the command, then follow it."""
        entity = work.ids
        meta = carry_over(commands_pb2.CommandMetadata, metadata, work)
        meta.cluster_id = entity.cluster_id
        meta.context_id = entity.context_id
        meta.context_created = entity.created_context
        meta.cluster_url = cluster_url(dbx.host, meta.cluster_id)
        if entity.command_id:
            meta.command_id = entity.command_id
            body = await dbx.call("GET", f"{API}/commands/status", query=_ids(work))
            return await self._judge(dbx, work, body, meta)
        if work.cancel_sent:
            verdict = Verdict(True, Code.CANCELLED, "cancelled before the command was sent")
            return Observation(state="Cancelled", metadata=meta, verdict=verdict)
        context = await dbx.call("GET", f"{API}/contexts/status", query=_ids(work))
        meta.context_status = str(context.get("status") or "")
        outcome = judge_context(context)
        if outcome is Outcome.PENDING:
            return Observation(state="CONTEXT_PENDING", metadata=meta, verdict=PENDING)
        if outcome is Outcome.FAILURE:
            verdict = Verdict(True, Code.UNAVAILABLE, "the execution context failed to start")
            return Observation(state="CONTEXT_ERROR", metadata=meta, verdict=verdict)
        meta.command_id = await self._execute(dbx, work, entity)
        meta.status = "Queued"
        sent = dataclasses.replace(entity, command_id=meta.command_id)
        return Observation(state="Queued", metadata=meta, verdict=PENDING, entity=sent)

    async def _judge(
        self,
        dbx: Databricks,
        work: Work,
        body: Mapping[str, Any],
        meta: commands_pb2.CommandMetadata,
    ) -> Observation:
        meta.status = str(body.get("status") or "")
        verdict = judge_command(body)
        state = meta.status or "Queued"
        if not verdict.done:
            return Observation(state=state, metadata=meta, verdict=verdict)
        await self._destroy(dbx, work)
        results = body.get("results") or {}
        if verdict.succeeded:
            response = commands_pb2.CommandResult(
                command_id=meta.command_id,
                status=meta.status,
                result_type=str(results.get("resultType") or ""),
                truncated=bool(results.get("truncated")),
                results=struct(results),
            )
            if "data" in results:
                response.data.CopyFrom(value(results["data"]))
            for column in results.get("schema") or []:
                response.schema.append(struct(column))
            return Observation(state=state, metadata=meta, verdict=verdict, response=response)
        info = error_info(
            "DATABRICKS_COMMAND_" + ("ERROR" if meta.status == "Finished" else meta.status.upper()),
            cluster_id=meta.cluster_id,
            context_id=meta.context_id,
            command_id=meta.command_id,
            status=meta.status,
            cause=str(results.get("cause") or "")[:MAX_MESSAGE],
        )
        return Observation(state=state, metadata=meta, verdict=verdict, details=(info,))

    async def _destroy(self, dbx: Databricks, work: Work) -> None:
        entity = work.ids
        if not entity.created_context:
            return
        ids = {"clusterId": entity.cluster_id, "contextId": entity.context_id}
        try:
            await dbx.call("POST", f"{API}/contexts/destroy", body=ids, idempotent=True)
        except LroError as exc:  # best effort: an idle context only costs a slot
            _log.info("context %s not destroyed: %s", entity.context_id, exc)

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """commands/cancel (asynchronous); before the command was sent, drop the context."""
        if work.ids.command_id:
            await dbx.call("POST", f"{API}/commands/cancel", body=_ids(work), idempotent=True)
        else:
            await self._destroy(dbx, work)
