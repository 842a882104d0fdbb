"""The statements family: SQL Statement Execution API 2.0 statements as operations.

ExecuteStatement submits with a short ``wait_timeout`` (0s: the RPC answers at once) and
``on_wait_timeout=CONTINUE``, then follows ``GET /api/2.0/sql/statements/{id}``; a stopped
warehouse is started by the statement itself. The API has no list of statements, so each
is polled alone, bounded like every other entity by the workspace's rate limit and the
per-operation back-off. The response carries the manifest and the first chunk inline when
it is at most :data:`INLINE_BYTES` of JSON; otherwise the links of every chunk. There is no
idempotency token: a start retried after a lost answer may run the statement twice (say so
in docs), and a TrackStatement never runs anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from lro_server._proto.lro.databricks.v1 import statements_pb2
from lro_server.core.clock import Clock, SystemClock, to_micros
from lro_server.core.errors import Code, Internal
from lro_server.databricks.client import Databricks
from lro_server.databricks.convert import carry_over, error_info, stamp_initial, struct
from lro_server.databricks.family import Observation, Verdict
from lro_server.databricks.paths import path_id
from lro_server.databricks.statements_states import judge_statement
from lro_server.databricks.work import Entity, Work

API = "/api/2.0/sql/statements"
#: Largest first chunk carried inline in a response, as JSON text (64 KiB); a larger one
#: is given as links only, so a record never grows with the result.
INLINE_BYTES = 64 * 1024
#: Most chunk links listed in a response.
MAX_CHUNK_LINKS = 1000
#: The submit's wait: answer at once, the tracker follows.
WAIT_TIMEOUT = "0s"


class StatementsFamily:
    """Statements ExecuteStatement / TrackStatement.

    Args:
        clock: Wall time of the metadata's ``elapsed``.
    """

    name = "statements"

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()

    def initial_metadata(self, work: Work) -> Message:
        """StatementMetadata before Databricks answered."""
        request = work.request
        meta = statements_pb2.StatementMetadata(
            warehouse_id=str(request.get("warehouse_id") or ""),
            statement_id=str(request.get("statement_id") or ""),
            tracked=work.action == "track",
        )
        return stamp_initial(meta, work)

    async def start(
        self, dbx: Databricks, work: Work, token: str, *, retry: bool = False
    ) -> Entity:
        """Submit the statement (or check that a tracked one exists)."""
        if work.action == "track":
            statement_id = path_id(work.request["statement_id"], "statement_id")
            answer = await dbx.call("GET", f"{API}/{statement_id}")
            warehouse = str(answer.get("warehouse_id") or "")
            return Entity(statement_id=statement_id, warehouse_id=warehouse, tracked=True)
        if work.action != "execute":
            raise Internal(f"unknown statements action {work.action!r}")
        body = {**work.request, "wait_timeout": WAIT_TIMEOUT, "on_wait_timeout": "CONTINUE"}
        answer = await dbx.call("POST", API, body=body, idempotent=False)
        return Entity(
            statement_id=str(answer["statement_id"]),
            warehouse_id=str(work.request.get("warehouse_id") or ""),
        )

    async def observe(self, dbx: Databricks, work: Work, metadata: Message | None) -> Observation:
        """GET the statement and judge it."""
        statement_id = work.ids.statement_id
        answer = await dbx.call("GET", f"{API}/{path_id(statement_id, 'statement_id')}")
        return self.judge(answer, metadata, work)

    def judge(self, answer: Mapping[str, Any], metadata: Message | None, work: Work) -> Observation:
        """Observation of a GET sql/statements/{id} body."""
        entity = work.ids
        status = answer.get("status") or {}
        error = status.get("error") or {}
        meta = carry_over(statements_pb2.StatementMetadata, metadata, work)
        meta.statement_id = entity.statement_id
        meta.warehouse_id = entity.warehouse_id or meta.warehouse_id
        previous_state = meta.state
        meta.state = str(status.get("state") or "")
        meta.tracked = entity.tracked
        if meta.state != previous_state:
            # Set at each change of state only: a value that moved on every poll would make
            # every poll a write and keep the poll interval from backing off.
            elapsed_us = max(0, to_micros(self._clock.now()) - work.create_time_us)
            meta.elapsed.FromMicroseconds(elapsed_us - elapsed_us % 1000)
        manifest = answer.get("manifest") or {}
        if "total_row_count" in manifest:
            meta.rows_so_far = int(manifest["total_row_count"])
        verdict = judge_statement(
            meta.state, str(error.get("error_code") or ""), str(error.get("message") or "")
        )
        state = meta.state or "PENDING"
        if not verdict.done:
            return Observation(state=state, metadata=meta, verdict=verdict)
        meta.end_time.FromMicroseconds(to_micros(self._clock.now()))
        if verdict.succeeded:
            response = _result(entity.statement_id, meta.state, answer)
            return Observation(state=state, metadata=meta, verdict=verdict, response=response)
        sql_state = str(status.get("sql_state") or "")
        message = verdict.message
        if sql_state and verdict.code != Code.CANCELLED:
            message = f"{message} (SQLSTATE {sql_state})"
        info = error_info(
            "DATABRICKS_STATEMENT_" + meta.state,
            statement_id=entity.statement_id,
            warehouse_id=meta.warehouse_id,
            error_code=str(error.get("error_code") or ""),
            sql_state=sql_state,
        )
        verdict = Verdict(True, verdict.code, message)
        return Observation(state=state, metadata=meta, verdict=verdict, details=(info,))

    async def cancel(self, dbx: Databricks, work: Work) -> None:
        """POST .../cancel (Databricks cancels asynchronously; also a tracked statement)."""
        statement_id = path_id(work.ids.statement_id, "statement_id")
        await dbx.call("POST", f"{API}/{statement_id}/cancel", body={}, idempotent=True)


def _result(
    statement_id: str, state: str, answer: Mapping[str, Any]
) -> statements_pb2.StatementResult:
    manifest = answer.get("manifest") or {}
    result = statements_pb2.StatementResult(
        statement_id=statement_id,
        state=state,
        manifest=struct(manifest),
        result_available=state == "SUCCEEDED",
        total_row_count=int(manifest.get("total_row_count") or 0),
        truncated=bool(manifest.get("truncated")),
    )
    if state != "SUCCEEDED":
        return result
    first = answer.get("result") or {}
    inline = "data_array" in first and len(json.dumps(first)) <= INLINE_BYTES
    if inline:
        result.first_chunk.CopyFrom(struct(first))
    links = {int(link.get("chunk_index") or 0): link for link in first.get("external_links") or []}
    for chunk in (manifest.get("chunks") or [])[:MAX_CHUNK_LINKS]:
        index = int(chunk.get("chunk_index") or 0)
        if inline and index == 0:
            continue
        link = links.get(index) or {}
        out = statements_pb2.ResultChunk(
            chunk_index=index,
            row_offset=int(chunk.get("row_offset") or 0),
            row_count=int(chunk.get("row_count") or 0),
            link=str(link.get("external_link") or f"{API}/{statement_id}/result/chunks/{index}"),
        )
        result.chunks.append(out)
    return result
