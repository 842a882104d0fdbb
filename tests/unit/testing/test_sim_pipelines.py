"""The simulator's pipelines (Delta Live Tables), driven through the real databricks-sdk."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import ResourceConflict, ResourceDoesNotExist
from databricks.sdk.service import pipelines

from lro_server.testing.databricks_sim import ManualClock, SimulatorThread

UpdateState = pipelines.UpdateInfoState


def _pipeline(w: WorkspaceClient, name: str = "sales") -> str:
    pipeline_id = w.pipelines.create(name=name).pipeline_id
    assert pipeline_id is not None
    return pipeline_id


def _update(w: WorkspaceClient, pipeline_id: str) -> str:
    update_id = w.pipelines.start_update(pipeline_id).update_id
    assert update_id is not None
    return update_id


def _update_state(w: WorkspaceClient, pipeline_id: str, update_id: str) -> UpdateState | None:
    update = w.pipelines.get_update(pipeline_id, update_id).update
    assert update is not None
    return update.state


def test_update_runs_through_every_state(w: WorkspaceClient, sim_clock: ManualClock) -> None:
    pipeline_id = _pipeline(w)
    assert w.pipelines.get(pipeline_id).state == pipelines.PipelineState.IDLE
    update_id = _update(w, pipeline_id)
    seen: list[UpdateState | None] = []
    for _ in range(20):
        state = _update_state(w, pipeline_id, update_id)
        if not seen or seen[-1] != state:
            seen.append(state)
        sim_clock.advance(0.05)
    assert seen == [
        UpdateState.QUEUED,
        UpdateState.CREATED,
        UpdateState.WAITING_FOR_RESOURCES,
        UpdateState.INITIALIZING,
        UpdateState.SETTING_UP_TABLES,
        UpdateState.RUNNING,
        UpdateState.COMPLETED,
    ]
    got = w.pipelines.get(pipeline_id)
    assert got.state == pipelines.PipelineState.IDLE
    assert [u.update_id for u in got.latest_updates or []] == [update_id]


def test_second_concurrent_update_is_refused_and_stop_cancels(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    sim.set_timeline("updates", "hold", name="sales")
    pipeline_id = _pipeline(w)
    update_id = _update(w, pipeline_id)
    sim_clock.advance(1)
    assert w.pipelines.get(pipeline_id).state == pipelines.PipelineState.RUNNING
    with pytest.raises(ResourceConflict, match="active update"):
        w.pipelines.start_update(pipeline_id)
    w.pipelines.stop(pipeline_id)
    assert _update_state(w, pipeline_id, update_id) == UpdateState.STOPPING
    sim_clock.advance(0.1)
    assert _update_state(w, pipeline_id, update_id) == UpdateState.CANCELED
    assert w.pipelines.get(pipeline_id).state == pipelines.PipelineState.IDLE
    w.pipelines.stop(pipeline_id)  # no active update: a no-op
    second = _update(w, pipeline_id)
    sim.finish("updates", f"{pipeline_id}/{second}", "COMPLETED")
    assert _update_state(w, pipeline_id, second) == UpdateState.COMPLETED


def test_failed_update_reports_an_error_event(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    pipeline_id = _pipeline(w)
    sim.set_timeline("updates", "failed", pipeline_id=pipeline_id)
    update_id = _update(w, pipeline_id)
    sim_clock.advance(5)
    assert _update_state(w, pipeline_id, update_id) == UpdateState.FAILED
    assert w.pipelines.get(pipeline_id).state == pipelines.PipelineState.FAILED
    errors = [e for e in w.pipelines.list_pipeline_events(pipeline_id) if e.level]
    assert errors and errors[0].level == pipelines.EventLevel.ERROR
    assert errors[0].message == f"Update {update_id[:6]} is FAILED."
    assert errors[0].error is not None and errors[0].error.exceptions
    cause = errors[0].error.exceptions[0]
    assert cause.class_name == "org.apache.spark.sql.AnalysisException"
    assert cause.message == "Table or view not found: raw.sales"


def test_list_filters_pages_and_errors(w: WorkspaceClient, sim: SimulatorThread) -> None:
    ids = [_pipeline(w, f"p{i}") for i in range(5)]
    other = _pipeline(w, "other")
    assert [p.pipeline_id for p in w.pipelines.list_pipelines(max_results=2)] == [*ids, other]
    liked = w.pipelines.list_pipelines(filter="name LIKE 'p%'")
    assert [p.pipeline_id for p in liked] == ids
    chosen = w.pipelines.list_pipelines(filter=f"id IN ('{ids[0]}', '{other}')")
    assert [p.pipeline_id for p in chosen] == [ids[0], other]
    with pytest.raises(ResourceDoesNotExist):
        w.pipelines.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(ResourceDoesNotExist):
        w.pipelines.get_update(ids[0], "nope")
    assert len(sim.created("pipelines")) == 6
