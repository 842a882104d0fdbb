"""Statements.* end to end: gRPC API → server → simulator (Statement Execution API 2.0,
through the real SDK), on a manual simulator clock."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from family_helpers import (
    SETTLE,
    assert_cancelled,
    calls_reach,
    future,
    manual_simulator,
    metadata_when,
    outcome,
    rest,
)
from google.rpc import error_details_pb2

from lro_server._proto.lro.databricks.v1 import statements_pb2, statements_pb2_grpc
from lro_server.databricks.statements import INLINE_BYTES
from lro_server.testing.databricks_sim import SimulatorThread

API = "/api/2.0/sql/statements"


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    yield from manual_simulator()


@pytest.fixture
def statements(channel):
    return statements_pb2_grpc.StatementsStub(channel)


@pytest.fixture
def warehouse_id(sim) -> str:
    body = {"name": "bi", "cluster_size": "2X-Small"}
    warehouse = str(rest(sim)("POST", "/api/2.0/sql/warehouses", body=body)["id"])
    sim.advance(SETTLE)
    return warehouse


def _future(op, operations):
    return future(op, operations, statements_pb2.StatementResult, statements_pb2.StatementMetadata)


def _execute(statements, warehouse_id: str, **fields) -> object:
    request = statements_pb2.ExecuteStatementRequest(
        warehouse_id=warehouse_id, statement="SELECT * FROM sales.orders", **fields
    )
    return statements.ExecuteStatement(request)


def test_a_statement_succeeds_with_its_first_chunk_inline(
    sim, statements, operations, warehouse_id
):
    op = _execute(
        statements,
        warehouse_id,
        parameters=[statements_pb2.StatementParameter(name="day", value="2024-06-01")],
        labels={"team": "bi"},
    )
    fut = _future(op, operations)
    meta = metadata_when(fut, lambda m: m.statement_id != "", "the statement id")
    assert meta.warehouse_id == warehouse_id and dict(meta.labels) == {"team": "bi"}
    sim.advance(SETTLE)
    result = fut.result(timeout=30)
    assert result.state == "SUCCEEDED" and result.result_available
    assert result.total_row_count == 3 and not result.truncated
    rows = [list(row) for row in result.first_chunk["data_array"]]
    assert rows == [["0", "row 0"], ["1", "row 1"], ["2", "row 2"]]
    assert [c["name"] for c in result.manifest["schema"]["columns"]] == ["id", "label"]
    assert not result.chunks
    (submitted,) = sim.call_log(path_contains="sql/statements")[:1]
    assert submitted.method == "POST"
    assert fut.metadata.rows_so_far == 3


def test_a_large_result_gives_chunk_links_never_a_giant_record(
    sim, statements, operations, warehouse_id
):
    sim.set_timeline("statements", "large", warehouse_id=warehouse_id)
    fut = _future(_execute(statements, warehouse_id), operations)
    metadata_when(fut, lambda m: m.statement_id != "", "the statement id")
    sim.advance(SETTLE)
    result = fut.result(timeout=30)
    assert result.total_row_count == 25000
    assert not result.first_chunk.fields  # 10,000 rows are over the inline limit
    assert [c.chunk_index for c in result.chunks] == [0, 1, 2]
    assert result.chunks[2].row_offset == 20000 and result.chunks[2].row_count == 5000
    assert result.chunks[1].link.endswith("/result/chunks/1")
    assert fut.operation.ByteSize() < INLINE_BYTES
    chunk = rest(sim)("GET", result.chunks[1].link)
    assert chunk["row_offset"] == 10000


def test_a_failed_statement_carries_the_message_and_sql_state(
    sim, statements, operations, warehouse_id
):
    sim.set_timeline("statements", "failed", warehouse_id=warehouse_id)
    fut = _future(_execute(statements, warehouse_id), operations)
    metadata_when(fut, lambda m: m.statement_id != "", "the statement id")
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 3  # BAD_REQUEST: INVALID_ARGUMENT
    assert op.error.message == (
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `sales`.`orders` cannot be found. "
        "(SQLSTATE 42P01)"
    )
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in op.error.details)
    assert info.metadata["sql_state"] == "42P01"


def test_cancel_operation_cancels_the_statement(sim, statements, operations, warehouse_id):
    sim.set_timeline("statements", "hold", warehouse_id=warehouse_id)
    fut = _future(_execute(statements, warehouse_id), operations)
    metadata_when(fut, lambda m: m.statement_id != "", "the statement id")
    assert fut.cancel()
    calls_reach(sim, "/cancel")
    sim.advance(SETTLE)
    assert_cancelled(outcome(fut))
    assert fut.metadata.state == "CANCELED"


def test_a_statement_cancelled_elsewhere_ends_cancelled(sim, statements, operations, warehouse_id):
    sim.set_timeline("statements", "hold", warehouse_id=warehouse_id)
    fut = _future(_execute(statements, warehouse_id), operations)
    statement_id = metadata_when(fut, lambda m: m.statement_id != "", "the id").statement_id
    rest(sim)("POST", f"{API}/{statement_id}/cancel", body={})
    sim.advance(SETTLE)
    op = outcome(fut)
    assert op.error.code == 1 and "cancelled" in op.error.message


def test_a_closed_statement_succeeds_without_its_result(sim, statements, operations, warehouse_id):
    sim.set_timeline("statements", "closed", warehouse_id=warehouse_id)
    fut = _future(_execute(statements, warehouse_id), operations)
    metadata_when(fut, lambda m: m.statement_id != "", "the statement id")
    sim.advance(SETTLE)
    result = fut.result(timeout=30)
    assert result.state == "CLOSED" and not result.result_available
    assert not result.first_chunk.fields and not result.chunks


def test_a_stopped_warehouse_is_started_by_the_statement(sim, statements, operations, warehouse_id):
    rest(sim)("POST", f"/api/2.0/sql/warehouses/{warehouse_id}/stop", body={})
    sim.advance(SETTLE)
    fut = _future(_execute(statements, warehouse_id), operations)
    metadata_when(fut, lambda m: m.state == "PENDING", "the statement waiting")
    warehouse = rest(sim)("GET", f"/api/2.0/sql/warehouses/{warehouse_id}")
    assert warehouse["state"] == "STARTING"
    sim.advance(SETTLE)
    sim.advance(SETTLE)
    assert fut.result(timeout=30).state == "SUCCEEDED"


def test_track_statement_follows_a_statement_started_elsewhere(
    sim, statements, operations, warehouse_id
):
    sim.set_timeline("statements", "hold", warehouse_id=warehouse_id)
    body = {"warehouse_id": warehouse_id, "statement": "SELECT 1", "wait_timeout": "0s"}
    statement_id = rest(sim)("POST", API, body=body)["statement_id"]
    sim.advance(1)
    request = statements_pb2.TrackStatementRequest(statement_id=statement_id)
    op = statements.TrackStatement(request)
    assert statements.TrackStatement(request).name == op.name
    fut = _future(op, operations)
    meta = metadata_when(fut, lambda m: m.state == "RUNNING", "the statement running")
    assert meta.tracked and meta.statement_id == statement_id
    sim.finish("statements", statement_id, "SUCCEEDED", rows=1)
    assert fut.result(timeout=30).total_row_count == 1
    assert len(sim.created("statements")) == 1  # only the test's own


def test_statement_calls_survive_throttling_outages_and_dropped_answers(
    sim, statements, operations, warehouse_id
):
    sim.inject_fault("rate_limit", path="sql/statements/", method="GET", times=2, retry_after=0)
    sim.inject_fault("unavailable", path="sql/statements/", method="GET", times=2, retry_after=0)
    sim.inject_fault("drop_after_commit", path="sql/statements/", method="GET", times=1)
    fut = _future(_execute(statements, warehouse_id), operations)
    metadata_when(fut, lambda m: m.statement_id != "", "the statement id")
    sim.advance(SETTLE)
    assert fut.result(timeout=30).state == "SUCCEEDED"
    assert len(sim.created("statements")) == 1


def test_a_throttled_submit_is_retried(sim, statements, operations, warehouse_id):
    sim.inject_fault("rate_limit", path="sql/statements$", method="POST", times=2, retry_after=0)
    fut = _future(_execute(statements, warehouse_id), operations)
    metadata_when(fut, lambda m: m.statement_id != "", "the statement id")
    sim.advance(SETTLE)
    assert fut.result(timeout=30).state == "SUCCEEDED"
    assert len(sim.created("statements")) == 1


def test_bad_requests_are_refused(sim, statements, warehouse_id):
    bad = [
        statements_pb2.ExecuteStatementRequest(statement="SELECT 1"),
        statements_pb2.ExecuteStatementRequest(warehouse_id=warehouse_id),
        statements_pb2.ExecuteStatementRequest(
            warehouse_id=warehouse_id, statement="SELECT 1", disposition="SOMEWHERE"
        ),
        statements_pb2.ExecuteStatementRequest(
            warehouse_id=warehouse_id, statement="SELECT 1", labels={"A": "b"}
        ),
    ]
    for request in bad:
        with pytest.raises(grpc.RpcError) as caught:
            statements.ExecuteStatement(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        statements.ExecuteStatement(
            statements_pb2.ExecuteStatementRequest(warehouse_id="nope", statement="SELECT 1")
        )
    assert caught.value.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.OK)
    assert not sim.created("statements")
