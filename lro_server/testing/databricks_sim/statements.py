"""The SQL Statement Execution API 2.0: execute, get, result chunks, cancel.

A statement waits for its warehouse: one that is STOPPED is started by the statement (as
Databricks does), and the statement stays PENDING until the warehouse is RUNNING; then it
follows its timeline. The result is made up from the final phase's fields: ``rows``
(default 3), ``chunk_rows`` (rows per chunk, default 1000), and for a failure
``error_message``, ``error_code`` and ``sql_state``. ``EXTERNAL_LINKS`` answers presigned
links (to this simulator) instead of inline data.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, invalid_parameter, not_found
from .routing import JSON, Route, SimRequest, api
from .timeline import Phase, Progress, Timeline
from .warehouses import WarehousesFamily
from .world import World

__all__ = ["StatementsFamily"]

#: States after which a statement never changes (CLOSED follows a success later).
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "CLOSED"})
#: Columns of every made-up result.
COLUMNS = ({"name": "id", "type_name": "INT"}, {"name": "label", "type_name": "STRING"})


def _p(state: str, seconds: float | None = None, **fields: Any) -> Phase:
    return Phase(state, seconds, fields)


_RUN = (_p("PENDING", 0.1), _p("RUNNING", 0.3))
#: Named timelines of statements (kind ``statements``; selector ``warehouse_id``).
STATEMENT_PRESETS: Mapping[str, Timeline] = {
    "default": (*_RUN, _p("SUCCEEDED", rows=3)),
    "hold": (_p("PENDING", 0.1), _p("RUNNING")),
    "large": (*_RUN, _p("SUCCEEDED", rows=25000, chunk_rows=10000)),
    "failed": (
        *_RUN,
        _p(
            "FAILED",
            error_code="BAD_REQUEST",
            error_message="[TABLE_OR_VIEW_NOT_FOUND] The table or view `sales`.`orders` "
            "cannot be found.",
            sql_state="42P01",
        ),
    ),
    "closed": (*_RUN, _p("CLOSED", rows=3)),
}
#: How a cancelled statement ends.
CANCEL_SECONDS = 0.1


@dataclass
class Statement:
    """One executed statement."""

    statement_id: str
    warehouse_id: str
    body: JSON
    progress: Progress
    created_at: float


class StatementsFamily:
    """SQL statements on the simulator's warehouses."""

    presets: Mapping[str, Mapping[str, Timeline]] = {"statements": STATEMENT_PRESETS}

    def __init__(self, world: World, warehouses: WarehousesFamily) -> None:
        """Creates an empty family in ``world`` running on ``warehouses``."""
        self._world = world
        self._warehouses = warehouses
        self.statements: dict[str, Statement] = {}

    def reset(self) -> None:
        """Forgets every statement."""
        self.statements.clear()

    def routes(self) -> list[Route]:
        """Returns the Statement Execution endpoints."""
        one = "sql/statements/{statement_id}"
        return [
            Route("POST", api("2.0", "sql/statements"), self.execute),
            Route("POST", api("2.0", "sql/statements/"), self.execute),
            Route("GET", api("2.0", one), self.get),
            Route("GET", api("2.0", f"{one}/result/chunks/{{chunk:[0-9]+}}"), self.chunk),
            Route("POST", api("2.0", f"{one}/cancel"), self.cancel),
        ]

    def finish(self, kind: str, entity_id: str, phase: Phase) -> None:
        """Moves statement ``entity_id`` to ``phase`` now."""
        self.statements[entity_id].progress.restart((phase,), self._world.now())

    # -- calls ------------------------------------------------------------------------

    def execute(self, req: SimRequest) -> JSON:
        """POST sql/statements: runs it; answers after ``wait_timeout`` at most (0s: at once)."""
        warehouse_id = str(req.require("warehouse_id"))
        text = str(req.require("statement"))
        warehouse = self._warehouses.warehouses.get(warehouse_id)
        if warehouse is None:
            raise not_found(f"Warehouse {warehouse_id} does not exist.")
        state = warehouse.progress.current(req.now).state
        if state in ("DELETING", "DELETED"):
            raise ApiError(400, "INVALID_STATE", f"Warehouse {warehouse_id} is {state}.")
        wait = str(req.get("wait_timeout") or "10s")
        if wait != "0s" and not (wait.endswith("s") and 5 <= int(wait[:-1] or 0) <= 50):
            raise invalid_parameter("wait_timeout must be 0s or between 5s and 50s")
        on_timeout = str(req.get("on_wait_timeout") or "CONTINUE")
        if on_timeout not in ("CONTINUE", "CANCEL"):
            raise invalid_parameter(f"Invalid on_wait_timeout: {on_timeout}")
        disposition = str(req.get("disposition") or "INLINE")
        if disposition not in ("INLINE", "EXTERNAL_LINKS"):
            raise invalid_parameter(f"Invalid disposition: {disposition}")
        if state in ("STOPPED", "STOPPING"):
            # The statement starts its warehouse, as Databricks does.
            timeline = self._world.timeline_for("warehouses", [("id", warehouse_id)])
            warehouse.progress.restart(timeline, req.now)
        statement_id = str(uuid.UUID(int=self._world.new_id(), version=4))
        timeline = self._world.timeline_for("statements", [("warehouse_id", warehouse_id)])
        statement = Statement(
            statement_id, warehouse_id, dict(req.body), Progress(timeline, req.now), req.now
        )
        self.statements[statement_id] = statement
        self._world.record_created("statements", statement_id, statement=text[:200])
        return self.render(statement, req.now)

    def _statement(self, req: SimRequest) -> Statement:
        statement_id = req.params["statement_id"]
        found = self.statements.get(statement_id)
        if found is None:
            raise not_found(f"Statement {statement_id} does not exist.")
        return found

    def get(self, req: SimRequest) -> JSON:
        """GET sql/statements/{id}."""
        return self.render(self._statement(req), req.now)

    def cancel(self, req: SimRequest) -> JSON:
        """POST .../cancel: asynchronous; the statement ends CANCELED."""
        statement = self._statement(req)
        if self._state(statement, req.now)[0].state not in TERMINAL:
            statement.progress.restart((_p("RUNNING", CANCEL_SECONDS), _p("CANCELED")), req.now)
        return {}

    def chunk(self, req: SimRequest) -> JSON:
        """GET .../result/chunks/{n}: one chunk of a SUCCEEDED statement's result."""
        statement = self._statement(req)
        phase, _ = self._state(statement, req.now)
        if phase.state != "SUCCEEDED":
            raise ApiError(
                400,
                "BAD_REQUEST",
                f"The result of statement {statement.statement_id} "
                f"is not available (state {phase.state}).",
            )
        index = int(req.params["chunk"])
        chunks = _chunks(phase)
        if index >= len(chunks):
            raise invalid_parameter(f"Chunk {index} does not exist.")
        return self._chunk(statement, phase, index)

    # -- rendering --------------------------------------------------------------------

    def _state(self, statement: Statement, now: float) -> tuple[Phase, float]:
        warehouse = self._warehouses.warehouses.get(statement.warehouse_id)
        if warehouse is not None and warehouse.progress.current(now).state != "RUNNING":
            phase = statement.progress.current(now)
            if phase.state in ("PENDING", "RUNNING"):
                # Waiting for the warehouse: the statement's own clock has not started.
                statement.progress.restart(statement.progress.phases, now)
                return _p("PENDING"), now
        return statement.progress.position(now)

    def render(self, statement: Statement, now: float) -> JSON:
        """The statement as GET sql/statements/{id} answers it."""
        phase, _ = self._state(statement, now)
        status: JSON = {"state": phase.state}
        out: JSON = {"statement_id": statement.statement_id, "status": status}
        if phase.state == "FAILED":
            status["error"] = {
                "error_code": str(phase.fields.get("error_code", "BAD_REQUEST")),
                "message": str(phase.fields.get("error_message", "Statement failed.")),
            }
            if "sql_state" in phase.fields:
                status["sql_state"] = str(phase.fields["sql_state"])
        if phase.state in ("SUCCEEDED", "CLOSED"):
            out["manifest"] = self._manifest(statement, phase)
        if phase.state == "SUCCEEDED":
            out["result"] = self._chunk(statement, phase, 0)
        return out

    def _manifest(self, statement: Statement, phase: Phase) -> JSON:
        chunks = _chunks(phase)
        return {
            "format": str(statement.body.get("format") or "JSON_ARRAY"),
            "schema": {
                "column_count": len(COLUMNS),
                "columns": [{**c, "position": i} for i, c in enumerate(COLUMNS)],
            },
            "total_row_count": sum(count for _, count in chunks),
            "total_chunk_count": len(chunks),
            "chunks": [
                {"chunk_index": i, "row_offset": offset, "row_count": count}
                for i, (offset, count) in enumerate(chunks)
            ],
            "truncated": bool(phase.fields.get("truncated", False)),
        }

    def _chunk(self, statement: Statement, phase: Phase, index: int) -> JSON:
        chunks = _chunks(phase)
        if not chunks:
            return {"chunk_index": 0, "row_offset": 0, "row_count": 0}
        offset, count = chunks[index]
        out: JSON = {"chunk_index": index, "row_offset": offset, "row_count": count}
        if index + 1 < len(chunks):
            out["next_chunk_index"] = index + 1
            out["next_chunk_internal_link"] = (
                f"/api/2.0/sql/statements/{statement.statement_id}/result/chunks/{index + 1}"
            )
        if statement.body.get("disposition") == "EXTERNAL_LINKS":
            out["external_links"] = [
                {
                    "chunk_index": index,
                    "row_offset": offset,
                    "row_count": count,
                    "external_link": f"{self._world.url}/_sim/results/"
                    f"{statement.statement_id}/{index}",
                    "expiration": "2099-01-01T00:00:00Z",
                }
            ]
        else:
            out["data_array"] = [[str(i), f"row {i}"] for i in range(offset, offset + count)]
        return out


def _chunks(phase: Phase) -> list[tuple[int, int]]:
    """(row offset, row count) of each chunk of the phase's result."""
    rows = int(phase.fields.get("rows", 3))
    size = max(1, int(phase.fields.get("chunk_rows", 1000)))
    return [(offset, min(size, rows - offset)) for offset in range(0, rows, size)]
