"""kill -9 of a server process with 100 live operations (RunNow, Submit, chains, pending
cancels) and a few starts in flight, then a restart on the same store: every operation
reaches its correct outcome, none is lost, and no Databricks run is started twice."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2
from reliability import (
    SCALE,
    ServerProcess,
    Workload,
    call_retrying,
    duplicate_entities,
    outcome,
    start_all,
    wait_all_done,
)

from lro_server.testing.databricks_sim import SimulatorThread

pytestmark = pytest.mark.xdist_group("crash")

LIVE = 100 * SCALE
IN_FLIGHT = 5 * SCALE
#: Short leases: the restarted server takes over the killed one's work quickly.
ENV = {"LRO_LEASE_SECONDS": "2"}


def test_kill_9_with_100_live_operations_then_restart(tmp_path: Path, figures):
    with SimulatorThread(seed=3) as sim:
        workload = Workload(sim, running=8.0, tag="crash")
        plans = workload.plan(LIVE + IN_FLIGHT, chains=LIVE // 5, cancels=LIVE // 10)
        live, in_flight = plans[:LIVE], plans[LIVE:]
        store = f"sqlite:///{tmp_path}/lro.db"
        first = ServerProcess(store, sim.url, ENV, tmp_path / "first.log").start()
        try:
            with grpc.insecure_channel(first.grpc_target) as channel:
                start_all(channel, workload, live)
                for plan in live:
                    if plan.expect == "CANCELLED":
                        call_retrying(
                            channel,
                            "/google.longrunning.Operations/CancelOperation",
                            operations_pb2.CancelOperationRequest(name=plan.name),
                            operations_pb2.Operation,
                        )
                at_kill = {
                    plan.name: call_retrying(
                        channel,
                        "/google.longrunning.Operations/GetOperation",
                        operations_pb2.GetOperationRequest(name=plan.name),
                        operations_pb2.Operation,
                    )
                    for plan in live
                }
                # Starts still in flight when the process dies.
                pending = []
                for plan in in_flight:
                    path, request = workload.request(plan)
                    pending.append(
                        channel.unary_unary(path).future(request.SerializeToString(), timeout=10)
                    )
                first.kill()
                for future in pending:
                    # The server died under it: the client retries below.
                    with contextlib.suppress(grpc.RpcError):
                        future.result()
        finally:
            first.kill()
        # Runs last 8 s, so nothing has finished at the kill, except cancels: Databricks
        # confirms one 0.1 s after it was sent, and a poll may have seen that already.
        finished_early = [
            (plan.kind, plan.expect, outcome(at_kill[plan.name]))
            for plan in live
            if at_kill[plan.name].done
            and (plan.expect, outcome(at_kill[plan.name])) != ("CANCELLED", "CANCELLED")
        ]
        assert not finished_early, finished_early
        not_done = sum(not op.done for op in at_kill.values())
        assert not_done >= LIVE - LIVE // 10
        runs_at_kill = len(sim.created("runs"))

        restarted = time.monotonic()
        second = ServerProcess(store, sim.url, ENV, tmp_path / "second.log").start()
        try:
            with grpc.insecure_channel(second.grpc_target) as channel:
                start_all(channel, workload, in_flight)  # retried with the same request ids
                final = wait_all_done(channel, plans, timeout=90 * SCALE)
            recovered = time.monotonic() - restarted
        finally:
            assert second.terminate() == 0, second.output()
        wrong = [
            (p.kind, p.expect, outcome(final[p.name]))
            for p in plans
            if outcome(final[p.name]) != p.expect
        ]
        assert not wrong, wrong
        duplicates = duplicate_entities(sim)
        assert duplicates == 0
        runs = len(sim.created("runs"))
    figures(
        operations=len(plans),
        live_at_kill=not_done,
        starts_in_flight=IN_FLIGHT,
        runs_at_kill=runs_at_kill,
        runs=runs,
        correct_outcomes=len(plans) - len(wrong),
        lost=0,
        started_twice=duplicates,
        seconds_to_finish_after_restart=round(recovered, 1),
    )
