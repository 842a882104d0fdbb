"""Four replicas on the Spanner emulator: work started unevenly spreads over all four, and
``kill -9`` of two hands their work to the other two within the lease plus 10 s, with no
run started twice and no operation lost (benchmarks/replicas.py measures the same at 2,000
runs)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from reliability import (
    Planned,
    ServerProcess,
    create_job,
    duplicate_entities,
    outcome,
    wait_all_done,
)

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.storage.factory import open_store
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until

pytestmark = [pytest.mark.spanner, pytest.mark.xdist_group("replicas_four")]

LEASE = 6.0
RUNS = 80
#: Runs started through each replica: most through the first, as a sticky client does.
THROUGH = (56, 8, 8, 8)


def _holders(store: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        opened = await open_store(store)
        try:
            return await opened.lease_holders()
        finally:
            await opened.close()

    return asyncio.run(read())


def test_four_replicas_share_the_work_and_two_dying_lose_none(
    spanner_database_url: str, tmp_path: Path, figures
) -> None:
    env = {
        "LRO_LEASE_SECONDS": str(LEASE),
        "LRO_POLL_INTERVAL_SECONDS": "1",
        "LRO_MAX_POLL_INTERVAL_SECONDS": "1",
    }
    names = [f"replica-{i}" for i in range(4)]
    with SimulatorThread() as sim:
        job = create_job(sim, "fleet")
        sim.set_timeline("runs", "hold", job_id=job)
        replicas = [
            ServerProcess(
                spanner_database_url, sim.url, {**env, "LRO_REPLICA_ID": name}, tmp_path / name
            ).start()
            for name in names
        ]
        try:
            operations = []
            for replica, count in zip(replicas, THROUGH, strict=True):
                with grpc.insecure_channel(replica.grpc_target) as channel:
                    jobs = jobs_pb2_grpc.JobsStub(channel)
                    operations += [
                        jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job), timeout=30)
                        for _ in range(count)
                    ]

            def shared() -> dict[str, int] | None:
                holders = _holders(spanner_database_url)
                held = {n: holders.get(n, 0) for n in names}
                # 25% ± 10 points of the runs each.
                fair = all(0.15 * RUNS <= c <= 0.35 * RUNS for c in held.values())
                return held if fair and sum(held.values()) == RUNS else None

            shares = wait_until(shared, timeout=90, interval=1.0, what="even shares")
            for replica in replicas[2:]:
                replica.kill()
            killed = time.monotonic()

            def handed_over() -> dict[str, int] | None:
                holders = _holders(spanner_database_url)
                gone = holders.get("", 0) + sum(holders.get(n, 0) for n in names[2:])
                return holders if gone == 0 else None

            after = wait_until(handed_over, timeout=LEASE + 30, interval=0.5, what="handover")
            handover = time.monotonic() - killed
            for run in sim.created("runs"):
                sim.finish_run(int(run.entity_id), "SUCCESS")
            plans = [Planned("run_now", "SUCCESS", "", name=op.name) for op in operations]
            with grpc.insecure_channel(replicas[0].grpc_target) as channel:
                final = wait_all_done(channel, plans, timeout=60)
        finally:
            for replica in replicas:
                replica.kill()
        assert handover <= LEASE + 10, handover
        assert set(after) == set(names[:2])
        assert all(outcome(op) == "SUCCESS" for op in final.values())
        assert len(sim.created("runs")) == RUNS
        assert duplicate_entities(sim) == 0
    figures(
        runs=RUNS,
        started_through=dict(zip(names, THROUGH, strict=True)),
        shares=shares,
        survivors=after,
        handover_seconds=round(handover, 1),
        lease_seconds=LEASE,
        started_twice=0,
    )
