"""SIGTERM: in-flight calls drain within the grace period (held WaitOperation calls answer
with the latest state), leases are released so another replica takes over at once (long
before they would expire), and nothing is lost."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import grpc
import pytest
import requests
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2
from lro_steps import run_metadata
from reliability import (
    ServerProcess,
    Workload,
    call_retrying,
    outcome,
    start_all,
    wait_all_done,
)

from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until

pytestmark = pytest.mark.xdist_group("graceful_shutdown")

LEASE = 30.0
GRACE = 5.0


def test_sigterm_drains_releases_leases_and_loses_nothing(tmp_path: Path, figures):
    env = {
        "LRO_LEASE_SECONDS": str(LEASE),
        "LRO_SHUTDOWN_GRACE_SECONDS": str(GRACE),
    }
    with SimulatorThread() as sim:
        workload = Workload(sim, tag="drain")
        plans = workload.plan(10, cancels=10)  # every run held until the test ends it
        store = f"sqlite:///{tmp_path}/lro.db"
        first = ServerProcess(store, sim.url, env, tmp_path / "first.log").start()
        try:
            with grpc.insecure_channel(first.grpc_target) as channel:
                start_all(channel, workload, plans)

                def get(name: str) -> operations_pb2.Operation:
                    return call_retrying(
                        channel,
                        "/google.longrunning.Operations/GetOperation",
                        operations_pb2.GetOperationRequest(name=name),
                        operations_pb2.Operation,
                    )

                run_ids = {
                    p.name: wait_until(lambda p=p: run_metadata(get(p.name)).run_id, what="run")
                    for p in plans
                }
                wait = channel.unary_unary(
                    "/google.longrunning.Operations/WaitOperation",
                    request_serializer=operations_pb2.WaitOperationRequest.SerializeToString,
                    response_deserializer=operations_pb2.Operation.FromString,
                )
                held = [
                    wait.future(
                        operations_pb2.WaitOperationRequest(
                            name=p.name, timeout=duration_pb2.Duration(seconds=120)
                        ),
                        timeout=150,
                    )
                    for p in plans[:5]
                ]
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    http_waits = [
                        pool.submit(
                            requests.post,
                            f"{first.http_url}/v1/{p.name}:wait",
                            json={"timeout": "120s"},
                            timeout=150,
                        )
                        for p in plans[5:7]
                    ]
                    wait_until(
                        lambda: "WaitOperation" in _metrics(first.http_url),
                        what="the waits to be held",
                    )
                    stopping = time.monotonic()
                    status = first.terminate(timeout=GRACE + 20)
                    stopped = time.monotonic() - stopping
                    answers = [f.result(timeout=5) for f in held]
                    http_answers = [f.result(timeout=5) for f in http_waits]
        finally:
            first.kill()
        assert status == 0, first.output()
        assert stopped < GRACE + 5
        assert all(a.name and not a.done for a in answers)
        assert all(r.status_code == 200 and not r.json().get("done") for r in http_answers)

        second = ServerProcess(store, sim.url, env, tmp_path / "second.log").start()
        taking_over = time.monotonic()
        try:
            for run_id in run_ids.values():
                sim.finish_run(run_id, "SUCCESS")
            for plan in plans:
                plan.expect = "SUCCESS"
            with grpc.insecure_channel(second.grpc_target) as channel:
                final = wait_all_done(channel, plans, timeout=LEASE / 2)
            took_over = time.monotonic() - taking_over
        finally:
            second.terminate()
        assert all(outcome(final[p.name]) == "SUCCESS" for p in plans)
        assert took_over < LEASE / 2
    figures(
        operations=len(plans),
        waits_answered_at_shutdown=len(answers) + len(http_answers),
        seconds_to_stop=round(stopped, 2),
        seconds_to_take_over=round(took_over, 2),
        lease_seconds=LEASE,
        lost=0,
    )


def _metrics(base: str) -> str:
    """Prometheus text of the server (its held waiters show there)."""
    try:
        text = requests.get(base + "/metrics", timeout=5).text
    except requests.RequestException:
        return ""
    for line in text.splitlines():
        if line.startswith("lro_wait_operation_waiters") and not line.endswith(" 0.0"):
            value = float(line.rsplit(" ", 1)[1])
            if value >= 7:
                return "WaitOperation"
    return ""
