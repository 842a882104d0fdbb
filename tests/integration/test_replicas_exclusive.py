"""Two replicas on one store (SQLite file and the Spanner emulator): each operation is
tracked by exactly one replica at any time, a resume sent to both replicas at once runs
exactly once, and ``kill -9`` of one replica hands its work to the other."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from pathlib import Path

import grpc
import pytest
import requests
from chain_helpers import METHOD_PATH, chain_request, run_now
from google.longrunning import operations_pb2
from lro_steps import run_metadata
from reliability import (
    SCALE,
    ServerProcess,
    Workload,
    call_retrying,
    create_job,
    duplicate_entities,
    outcome,
    quick_config,
    start_all,
    wait_all_done,
)

from lro_server._proto.lro.databricks.v1 import chains_pb2, chains_pb2_grpc
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.core.store import ListQuery
from lro_server.resume.checkpoint import Checkpoint
from lro_server.storage.factory import open_store
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

pytestmark = pytest.mark.xdist_group("replicas_exclusive")


@pytest.fixture(params=["sqlite", pytest.param("spanner", marks=pytest.mark.spanner)])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store both replicas use."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/lro.db"
    return str(request.getfixturevalue("spanner_database_url"))


def _replicas(store: str, sim: SimulatorThread, **overrides: object) -> list[ServerThread]:
    return [
        ServerThread(quick_config(store, sim.url, replica_id=rid, **overrides)).start()
        for rid in ("replica-a", "replica-b")
    ]


def test_each_operation_is_tracked_by_one_replica_at_a_time(shared_store, figures):
    with SimulatorThread() as sim:
        workload = Workload(sim, running=3.0, tag="excl")
        plans = workload.plan(30 * SCALE)
        replicas = _replicas(shared_store, sim)
        try:
            channels = [grpc.insecure_channel(r.grpc_target) for r in replicas]
            # Alternately, so that both replicas hold running work at the same time even
            # when a loaded store makes the starts slower than a run is long.
            for index, plan in enumerate(plans):
                start_all(channels[index % 2], workload, [plan])
            samples = overlaps = 0
            both_busy = False
            most = [0, 0]  # the most operations each replica tracked at one sample

            def sample() -> bool:
                nonlocal samples, overlaps, both_busy
                tracked = [set(r.application.tracker.schedule.names()) for r in replicas]
                samples += 1
                overlaps += len(tracked[0] & tracked[1])
                both_busy = both_busy or all(tracked)
                most[:] = [max(m, len(t)) for m, t in zip(most, tracked, strict=True)]
                return samples >= 40 and not any(tracked)  # until every run finished

            wait_until(sample, timeout=60, interval=0.05, what="the runs to finish")
            final = wait_all_done(channels[0], plans)
            for channel in channels:
                channel.close()
        finally:
            for replica in replicas:
                replica.stop()
        assert overlaps == 0
        assert both_busy, f"both replicas should have tracked operations (most: {most})"
        assert all(outcome(final[p.name]) == p.expect for p in plans)
        assert duplicate_entities(sim) == 0
    figures(operations=len(plans), replicas=2, samples=samples, tracked_by_both=overlaps)


def test_a_resume_sent_to_both_replicas_runs_once(shared_store, figures):
    with SimulatorThread() as sim:
        held = create_job(sim, "first-step")
        sim.set_timeline("runs", "hold", job_id=held)
        second = create_job(sim, "second-step")
        sim.set_timeline("runs", "hold", job_id=second)
        replicas = _replicas(shared_store, sim, resume=ResumeConfig(recheck_seconds=0.2))
        try:
            with grpc.insecure_channel(replicas[0].grpc_target) as channel:
                op = chains_pb2_grpc.ChainsStub(channel).RunChain(
                    chain_request(run_now("first", held), run_now("second", second))
                )

                def step(index: int) -> str:
                    meta = chains_pb2.ChainMetadata()
                    call_retrying(
                        channel,
                        "/google.longrunning.Operations/GetOperation",
                        operations_pb2.GetOperationRequest(name=op.name),
                        operations_pb2.Operation,
                    ).metadata.Unpack(meta)
                    return meta.steps[index].operation if len(meta.steps) > index else ""

                child = wait_until(lambda: step(0), timeout=20, what="the first child")
                run_id = wait_until(
                    lambda: (
                        run_metadata(
                            call_retrying(
                                channel,
                                "/google.longrunning.Operations/GetOperation",
                                operations_pb2.GetOperationRequest(name=child),
                                operations_pb2.Operation,
                            )
                        ).run_id
                    ),
                    timeout=20,
                    what="the first run",
                )
                waiting = _seq(replicas[0], op.name)
                sim.finish_run(run_id, "SUCCESS")
                # Both embedded waiters notice, and twelve resume calls arrive at once.
                op_id = op.name.rsplit("/", 1)[1]
                urls = [r.http_url + METHOD_PATH for r in replicas] * 6
                with concurrent.futures.ThreadPoolExecutor(12) as pool:
                    answers = list(
                        pool.map(
                            lambda url: requests.post(
                                url,
                                json={"data": {}},
                                headers={"x-alis-operation-id": op_id},
                                timeout=30,
                            ),
                            urls,
                        )
                    )
                assert all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
                second_child = wait_until(lambda: step(1), timeout=20, what="the second child")
                after_resume = _seq(replicas[0], op.name)
                second_run = wait_until(
                    lambda: (
                        run_metadata(
                            call_retrying(
                                channel,
                                "/google.longrunning.Operations/GetOperation",
                                operations_pb2.GetOperationRequest(name=second_child),
                                operations_pb2.Operation,
                            )
                        ).run_id
                    ),
                    timeout=20,
                    what="the second run",
                )
                sim.finish_run(second_run, "SUCCESS")
                done = wait_until(
                    lambda: (
                        (
                            o := call_retrying(
                                channel,
                                "/google.longrunning.Operations/GetOperation",
                                operations_pb2.GetOperationRequest(name=op.name),
                                operations_pb2.Operation,
                            )
                        ).done
                        and o
                    ),
                    timeout=20,
                    what="the chain to finish",
                )
                assert outcome(done) == "SUCCESS"
                # One committed decision per wait: the first resume moved the checkpoint
                # on by one, and only the end of the second wait moved it again.
                assert after_resume == waiting + 1
                assert _seq(replicas[0], op.name) == waiting + 2
        finally:
            for replica in replicas:
                replica.stop()
        second_runs = sim.created("runs", job_id=second)
        assert len(second_runs) == 1, second_runs
        assert duplicate_entities(sim) == 0
    figures(resume_calls=len(urls), second_step_runs=len(second_runs), resumes_applied=1)


def _seq(server: ServerThread, name: str) -> int:
    """The checkpoint sequence number of a resumable operation."""
    record = server.run(server.application.store.get(name))
    return Checkpoint.decode(record.checkpoint, name=name).seq


@dataclasses.dataclass
class _Lease:
    holder: str
    done: bool


def _leases(store: str, names: list[str]) -> dict[str, _Lease]:
    async def read() -> dict[str, _Lease]:
        opened = await open_store(store)
        try:
            records = await opened.list(ListQuery(filter=None, owner=None, after=None, limit=1000))
        finally:
            if store.startswith("sqlite"):
                await opened.close()
        return {r.name: _Lease(r.lease_holder, r.done) for r in records if r.name in names}

    return asyncio.run(read())


def test_kill_9_of_one_replica_hands_its_work_to_the_other(shared_store, tmp_path, figures):
    env = {"LRO_LEASE_SECONDS": "2"}
    with SimulatorThread() as sim:
        workload = Workload(sim, running=4.0, tag="handover")
        plans = workload.plan(20 * SCALE, cancels=2 * SCALE)
        first = ServerProcess(
            shared_store, sim.url, {**env, "LRO_REPLICA_ID": "first"}, tmp_path / "a.log"
        ).start()
        second = ServerProcess(
            shared_store, sim.url, {**env, "LRO_REPLICA_ID": "second"}, tmp_path / "b.log"
        ).start()
        try:
            with grpc.insecure_channel(first.grpc_target) as channel:
                start_all(channel, workload, plans)
            names = [p.name for p in plans]
            before = _leases(shared_store, names)
            held_by_first = sum(lease.holder == "first" for lease in before.values())
            first.kill()
            with grpc.insecure_channel(second.grpc_target) as channel:
                for plan in plans:
                    if plan.expect == "CANCELLED":
                        call_retrying(
                            channel,
                            "/google.longrunning.Operations/CancelOperation",
                            operations_pb2.CancelOperationRequest(name=plan.name),
                            operations_pb2.Operation,
                        )
                final = wait_all_done(channel, plans, timeout=60)
            after = _leases(shared_store, names)
        finally:
            first.kill()
            second.terminate()
        assert held_by_first == len(plans)  # the first replica started them all
        assert all(outcome(final[p.name]) == p.expect for p in plans)
        assert all(lease.done for lease in after.values())
        assert duplicate_entities(sim) == 0
    figures(operations=len(plans), held_by_killed_replica=held_by_first, lost=0)
