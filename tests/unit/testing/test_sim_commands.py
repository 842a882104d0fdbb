"""The simulator's command execution API (1.2), driven through the real databricks-sdk."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidState, NotFound
from databricks.sdk.service import compute

from lro_server.testing.databricks_sim import ManualClock, Phase, SimulatorThread

Status = compute.CommandStatus


@pytest.fixture
def cluster_id(w: WorkspaceClient, sim_clock: ManualClock) -> str:
    created = _cluster(w)
    sim_clock.advance(1)
    return created


def _created_id(response: object) -> str:
    assert isinstance(response, compute.Created) and response.id
    return response.id


def _cluster(w: WorkspaceClient) -> str:
    response: object = w.clusters.create(spark_version="15.4.x-scala2.12", num_workers=0).response
    assert isinstance(response, compute.CreateClusterResponse) and response.cluster_id
    return response.cluster_id


def _context(w: WorkspaceClient, cluster_id: str, sim_clock: ManualClock) -> str:
    context_id = _created_id(
        w.command_execution.create(cluster_id=cluster_id, language=compute.Language.PYTHON).response
    )
    state = w.command_execution.context_status(cluster_id, context_id).status
    assert state == compute.ContextStatus.PENDING
    sim_clock.advance(0.1)
    return context_id


def _execute(w: WorkspaceClient, cluster_id: str, context_id: str, command: str) -> str:
    return _created_id(
        w.command_execution.execute(
            cluster_id=cluster_id,
            context_id=context_id,
            command=command,
            language=compute.Language.PYTHON,
        ).response
    )


def test_command_runs_to_finished_with_results(
    w: WorkspaceClient, cluster_id: str, sim_clock: ManualClock
) -> None:
    context_id = _context(w, cluster_id, sim_clock)
    status = w.command_execution.context_status(cluster_id, context_id)
    assert status.status == compute.ContextStatus.RUNNING
    command_id = _execute(w, cluster_id, context_id, "1 + 1")
    read = w.command_execution.command_status(cluster_id, context_id, command_id)
    assert read.status == Status.QUEUED and read.results is None
    sim_clock.advance(0.05)
    assert w.command_execution.command_status(cluster_id, context_id, command_id).status == (
        Status.RUNNING
    )
    sim_clock.advance(0.2)
    read = w.command_execution.command_status(cluster_id, context_id, command_id)
    assert read.status == Status.FINISHED and read.results is not None
    assert read.results.result_type == compute.ResultType.TEXT and read.results.data == "2"
    w.command_execution.destroy(cluster_id, context_id)
    with pytest.raises(NotFound):
        w.command_execution.context_status(cluster_id, context_id)


def test_failing_and_table_commands(
    w: WorkspaceClient, sim: SimulatorThread, cluster_id: str, sim_clock: ManualClock
) -> None:
    sim.set_timeline("commands", "error", command="1/0")
    sim.set_timeline("commands", "table", command="spark.sql('select 1')")
    context_id = _context(w, cluster_id, sim_clock)
    failing = _execute(w, cluster_id, context_id, "1/0")
    table = _execute(w, cluster_id, context_id, "spark.sql('select 1')")
    sim_clock.advance(1)
    read = w.command_execution.command_status(cluster_id, context_id, failing)
    # Databricks reports a failed command as Finished with resultType "error".
    assert read.status == Status.FINISHED and read.results is not None
    assert read.results.result_type == compute.ResultType.ERROR
    assert read.results.cause is not None and "ZeroDivisionError" in read.results.cause
    assert read.results.summary is not None
    read = w.command_execution.command_status(cluster_id, context_id, table)
    assert read.results is not None and read.results.result_type == compute.ResultType.TABLE
    assert read.results.data == [[1, "a"], [2, "b"]] and read.results.schema is not None


def test_cancel_and_hold(
    w: WorkspaceClient, sim: SimulatorThread, cluster_id: str, sim_clock: ManualClock
) -> None:
    sim.set_timeline("commands", "hold")
    context_id = _context(w, cluster_id, sim_clock)
    held = _execute(w, cluster_id, context_id, "while True: pass")
    other = _execute(w, cluster_id, context_id, "print(1)")
    sim_clock.advance(5)
    assert w.command_execution.command_status(cluster_id, context_id, held).status == (
        Status.RUNNING
    )
    w.command_execution.cancel(cluster_id=cluster_id, context_id=context_id, command_id=held)
    assert w.command_execution.command_status(cluster_id, context_id, held).status == (
        Status.CANCELLING
    )
    sim_clock.advance(0.1)
    assert w.command_execution.command_status(cluster_id, context_id, held).status == (
        Status.CANCELLED
    )
    sim.finish("commands", other, "Finished", resultType="text", data="1")
    read = w.command_execution.command_status(cluster_id, context_id, other)
    assert read.results is not None and read.results.data == "1"


def test_contexts_need_a_running_cluster(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    cluster_id = _cluster(w)
    with pytest.raises(InvalidState):
        w.command_execution.create(cluster_id=cluster_id, language=compute.Language.SQL)
    sim_clock.advance(1)
    sim.set_timeline("contexts", [Phase("Pending", 0.1), Phase("Error")])
    context_id = _created_id(w.command_execution.create(cluster_id=cluster_id).response)
    sim_clock.advance(1)
    assert w.command_execution.context_status(cluster_id, context_id).status == (
        compute.ContextStatus.ERROR
    )
    with pytest.raises(InvalidState):
        _execute(w, cluster_id, context_id, "1")
    assert len(sim.created("contexts", cluster_id=cluster_id)) == 1
