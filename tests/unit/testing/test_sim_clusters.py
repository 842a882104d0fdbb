"""The simulator's clusters and libraries, driven through the real databricks-sdk."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, InvalidState, ResourceDoesNotExist
from databricks.sdk.service import compute

from lro_server.testing.databricks_sim import ManualClock, SimulatorThread

State = compute.State


def _create(w: WorkspaceClient, name: str = "etl", workers: int = 1) -> str:
    response: object = w.clusters.create(
        spark_version="15.4.x-scala2.12", cluster_name=name, num_workers=workers
    ).response
    assert isinstance(response, compute.CreateClusterResponse) and response.cluster_id
    return response.cluster_id


def _state(w: WorkspaceClient, cluster_id: str) -> State | None:
    return w.clusters.get(cluster_id).state


def test_cluster_lifecycle(w: WorkspaceClient, sim_clock: ManualClock) -> None:
    cluster_id = _create(w)
    assert _state(w, cluster_id) == State.PENDING
    with pytest.raises(InvalidState, match="unexpected state Pending"):
        w.clusters.start(cluster_id)
    with pytest.raises(InvalidState):
        w.clusters.restart(cluster_id)
    sim_clock.advance(0.3)
    assert _state(w, cluster_id) == State.RUNNING

    w.clusters.resize(cluster_id, num_workers=4)
    got = w.clusters.get(cluster_id)
    assert got.state == State.RESIZING and got.num_workers == 4
    sim_clock.advance(0.1)
    w.clusters.resize(cluster_id, autoscale=compute.AutoScale(min_workers=1, max_workers=3))
    sim_clock.advance(0.1)
    got = w.clusters.get(cluster_id)
    assert got.state == State.RUNNING and got.autoscale is not None and got.num_workers is None

    w.clusters.restart(cluster_id)
    assert _state(w, cluster_id) == State.RESTARTING
    sim_clock.advance(0.2)
    w.clusters.edit(cluster_id, spark_version="16.0.x-scala2.12", num_workers=2)
    assert _state(w, cluster_id) == State.RESTARTING  # editing a running cluster restarts it
    sim_clock.advance(0.2)
    assert w.clusters.get(cluster_id).spark_version == "16.0.x-scala2.12"

    w.clusters.delete(cluster_id)
    assert _state(w, cluster_id) == State.TERMINATING
    sim_clock.advance(0.1)
    got = w.clusters.get(cluster_id)
    assert got.state == State.TERMINATED and got.termination_reason is not None
    assert got.termination_reason.code == compute.TerminationReasonCode.USER_REQUEST
    assert got.terminated_time is not None
    w.clusters.edit(cluster_id, spark_version="16.1.x-scala2.12", num_workers=1)
    assert (
        _state(w, cluster_id) == State.TERMINATED
    )  # editing a terminated cluster does not start it
    with pytest.raises(InvalidState):
        w.clusters.resize(cluster_id, num_workers=2)

    w.clusters.start(cluster_id)
    assert _state(w, cluster_id) == State.PENDING
    sim_clock.advance(0.3)
    assert _state(w, cluster_id) == State.RUNNING
    w.clusters.permanent_delete(cluster_id)
    with pytest.raises(ResourceDoesNotExist, match="does not exist"):
        w.clusters.get(cluster_id)
    with pytest.raises(InvalidParameterValue):
        w.clusters.start(cluster_id)
    with pytest.raises(InvalidParameterValue, match="spark_version"):
        w.api_client.do("POST", "/api/2.1/clusters/create", body={"num_workers": 1})


def test_cluster_failures_while_starting(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    sim.set_timeline("clusters", "error", cluster_name="broken")
    sim.set_timeline("clusters", "terminated_on_start", cluster_name="no-capacity")
    broken, starved = _create(w, "broken"), _create(w, "no-capacity")
    sim_clock.advance(1)
    got = w.clusters.get(broken)
    assert got.state == State.ERROR and got.state_message
    got = w.clusters.get(starved)
    assert got.state == State.TERMINATED
    assert got.state_message == "The cloud provider has no capacity for i3.xlarge."
    reason = got.termination_reason
    assert reason is not None and reason.parameters is not None
    assert reason.code == compute.TerminationReasonCode.CLOUD_PROVIDER_LAUNCH_FAILURE
    assert reason.type == compute.TerminationReasonType.CLOUD_FAILURE
    assert reason.parameters["aws_api_error_code"] == "InsufficientInstanceCapacity"


def test_held_cluster_is_finished_by_control(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    sim.set_timeline("clusters", "hold")
    cluster_id = _create(w)
    sim_clock.advance(60)
    assert _state(w, cluster_id) == State.PENDING
    sim.finish("clusters", cluster_id, "RUNNING")
    assert _state(w, cluster_id) == State.RUNNING


def test_cluster_list_filters_and_pages(w: WorkspaceClient, sim_clock: ManualClock) -> None:
    ids = [_create(w, f"c{i}") for i in range(5)]
    sim_clock.advance(1)
    w.clusters.delete(ids[0])
    sim_clock.advance(1)
    assert sorted(c.cluster_id for c in w.clusters.list(page_size=2)) == sorted(ids)  # type: ignore[type-var]
    running = w.clusters.list(
        filter_by=compute.ListClustersFilterBy(cluster_states=[State.RUNNING, State.PENDING])
    )
    assert sorted(c.cluster_id for c in running) == sorted(ids[1:])  # type: ignore[type-var]
    page = w.api_client.do("GET", "/api/2.1/clusters/list", query={"page_size": 2})
    assert isinstance(page, dict) and len(page["clusters"]) == 2 and page["next_page_token"]
    last = w.api_client.do("GET", "/api/2.0/clusters/list", query={"page_size": 5})
    assert isinstance(last, dict) and "next_page_token" not in last


def _statuses(w: WorkspaceClient, cluster_id: str) -> dict[str, str | None]:
    out = {}
    for status in w.libraries.cluster_status(cluster_id):
        lib = status.library
        assert lib is not None
        key = lib.pypi.package if lib.pypi else lib.jar
        out[str(key)] = status.status.value if status.status else None
    return out


def test_libraries_install_and_uninstall(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    cluster_id = _create(w)
    sim.set_timeline("libraries", "failed", library="pypi:broken==1.0")
    w.libraries.install(
        cluster_id,
        [
            compute.Library(pypi=compute.PythonPyPiLibrary(package="numpy")),
            compute.Library(pypi=compute.PythonPyPiLibrary(package="broken==1.0")),
            compute.Library(jar="/Volumes/main/default/libs/x.jar"),
        ],
    )
    # PENDING while the cluster is not running yet.
    sim_clock.advance(0.25)
    assert set(_statuses(w, cluster_id).values()) == {"PENDING"}
    sim_clock.advance(0.1)  # cluster RUNNING since 0.3 s
    assert _statuses(w, cluster_id)["numpy"] == "PENDING"
    sim_clock.advance(0.1)
    assert _statuses(w, cluster_id)["numpy"] == "RESOLVING"
    sim_clock.advance(0.1)
    assert _statuses(w, cluster_id)["numpy"] == "INSTALLING"
    sim_clock.advance(0.2)
    statuses = _statuses(w, cluster_id)
    assert statuses == {
        "numpy": "INSTALLED",
        "broken==1.0": "FAILED",
        "/Volumes/main/default/libs/x.jar": "INSTALLED",
    }
    failed = [s for s in w.libraries.cluster_status(cluster_id) if s.messages]
    assert len(failed) == 1 and "No matching distribution" in (failed[0].messages or [""])[0]

    w.libraries.uninstall(
        cluster_id, [compute.Library(pypi=compute.PythonPyPiLibrary(package="numpy"))]
    )
    assert _statuses(w, cluster_id)["numpy"] == "UNINSTALL_ON_RESTART"
    everything = list(w.libraries.all_cluster_statuses())
    assert [s.cluster_id for s in everything] == [cluster_id]
    w.clusters.restart(cluster_id)
    sim_clock.advance(0.2)
    assert "numpy" not in _statuses(w, cluster_id)
    with pytest.raises(InvalidParameterValue):
        w.libraries.install("0101-000000-nope", [compute.Library(jar="/x.jar")])


def test_library_on_a_terminated_cluster_waits_for_it(
    w: WorkspaceClient, sim: SimulatorThread, sim_clock: ManualClock
) -> None:
    cluster_id = _create(w)
    sim_clock.advance(0.3)
    w.clusters.delete(cluster_id)
    sim_clock.advance(0.1)
    sim.set_timeline("libraries", "hold")
    w.libraries.install(cluster_id, [compute.Library(whl="/Volumes/x.whl")])
    sim_clock.advance(10)
    assert [s.status for s in w.libraries.cluster_status(cluster_id)] == [
        compute.LibraryInstallStatus.PENDING
    ]
    w.clusters.start(cluster_id)
    sim_clock.advance(1)
    assert [s.status for s in w.libraries.cluster_status(cluster_id)] == [
        compute.LibraryInstallStatus.INSTALLING
    ]
    sim.finish("libraries", f"{cluster_id}/whl:/Volumes/x.whl", "SKIPPED", messages=["skipped"])
    status = next(iter(w.libraries.cluster_status(cluster_id)))
    assert status.status == compute.LibraryInstallStatus.SKIPPED and status.messages == ["skipped"]
