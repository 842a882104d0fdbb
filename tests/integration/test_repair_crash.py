"""kill -9 between a repair call and its record: the server dies while runs/repair is in
flight (Databricks applies it), a new server on the same store adopts that repair from
the run's history instead of repairing a second time."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf.duration_pb2 import Duration
from reliability import ServerProcess

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until

pytestmark = pytest.mark.xdist_group("crash")

ENV = {"LRO_LEASE_SECONDS": "2"}


def _metadata(
    channel: grpc.Channel, name: str
) -> tuple[operations_pb2.Operation, jobs_pb2.RunMetadata]:
    op = operations_pb2_grpc.OperationsStub(channel).GetOperation(
        operations_pb2.GetOperationRequest(name=name)
    )
    meta = jobs_pb2.RunMetadata()
    op.metadata.Unpack(meta)
    return op, meta


def test_kill_9_during_a_repair_call_then_restart_repairs_once(tmp_path: Path) -> None:
    with SimulatorThread() as sim:
        from databricks.sdk import WorkspaceClient

        rest = WorkspaceClient(host=sim.url, token="t", auth_type="pat").api_client.do
        body = {"name": "nightly", "tasks": [{"task_key": "t0"}, {"task_key": "t1"}]}
        job_id = int(rest("POST", "/api/2.2/jobs/create", body=body)["job_id"])
        failing = [
            {"state": "RUNNING", "seconds": 0.3},
            {"state": "TERMINATED", "result_state": "FAILED", "failing_task": "t1",
             "task_message": "Cluster lost", "termination_type": "CLOUD_FAILURE"},
        ]  # fmt: skip
        sim.set_timeline("runs", failing, job_id=job_id)
        # The repair is applied at once but answered only 5 s later: the server dies first.
        sim.inject_fault("slow_after_commit", path="runs/repair", delay=5.0, times=1)
        store = f"sqlite:///{tmp_path}/lro.db"
        first = ServerProcess(store, sim.url, ENV, tmp_path / "first.log").start()
        try:
            with grpc.insecure_channel(first.grpc_target) as channel:
                policy = jobs_pb2.RepairPolicy(max_repairs=1, delay=Duration(seconds=1))
                op = jobs_pb2_grpc.JobsStub(channel).RunNow(
                    jobs_pb2.RunNowRequest(job_id=job_id, repair_policy=policy)
                )
                wait_until(
                    lambda: _metadata(channel, op.name)[1].repairs,
                    timeout=30,
                    what="the repair decided",
                )
                sim.set_timeline("runs", "success", job_id=job_id)  # the repaired run succeeds
                wait_until(lambda: sim.created("repairs"), timeout=30, what="the repair applied")
                first.kill()  # before the answer: the repair id was never recorded
        finally:
            first.kill()

        second = ServerProcess(store, sim.url, ENV, tmp_path / "second.log").start()
        try:
            with grpc.insecure_channel(second.grpc_target) as channel:
                done = wait_until(
                    lambda: (found := _metadata(channel, op.name))[0].done and found,
                    timeout=60,
                    what="the operation done",
                )
        finally:
            second.kill()
        final, meta = done
        (repair,) = sim.created("repairs")
        assert [r.repair_id for r in meta.repairs] == [int(repair.entity_id)]
        assert not final.HasField("error"), final.error
        assert len(sim.created("repairs")) == 1
