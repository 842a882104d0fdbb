"""Faults: Databricks answering 429/503, dropping connections and answering slowly on about
20% of calls; a store failing transiently or going down. Operations still reach their
correct outcomes, nothing is started twice, and while the store is down the server answers
UNAVAILABLE (HTTP 503), never INTERNAL."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import requests
from google.longrunning import operations_pb2, operations_pb2_grpc
from reliability import (
    SCALE,
    Workload,
    call_retrying,
    duplicate_entities,
    outcome,
    quick_config,
    start_all,
    wait_all_done,
)

from lro_server.storage.sqlite_open import open_sqlite_store
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.flaky_store import FlakyStore
from lro_server.testing.server_thread import ServerThread

pytestmark = pytest.mark.xdist_group("faults")


def _cancel(channel: grpc.Channel, workload_plans) -> None:  # type: ignore[no-untyped-def]
    for plan in workload_plans:
        if plan.expect == "CANCELLED":
            call_retrying(
                channel,
                "/google.longrunning.Operations/CancelOperation",
                operations_pb2.CancelOperationRequest(name=plan.name),
                operations_pb2.Operation,  # Empty parses as an empty Operation
            )


def _check(plans, final) -> int:  # type: ignore[no-untyped-def]
    wrong = [
        (p.kind, p.expect, outcome(final[p.name]), final[p.name].error.message)
        for p in plans
        if outcome(final[p.name]) != p.expect
    ]
    assert not wrong, wrong
    return len(plans)


def test_databricks_faults_on_a_fifth_of_calls(tmp_path: Path, figures):
    with SimulatorThread(seed=11) as sim:
        workload = Workload(sim, running=0.5, tag="dbx")
        plans = workload.plan(30 * SCALE, chains=4 * SCALE, cancels=4 * SCALE)
        for kind, probability in (
            ("rate_limit", 0.05),
            ("unavailable", 0.05),
            ("drop_after_commit", 0.05),
            ("slow", 0.05),
        ):
            sim.inject_fault(kind, probability=probability, retry_after=1, delay=0.3)  # type: ignore[arg-type]
        config = quick_config(f"sqlite:///{tmp_path}/lro.db", sim.url)
        with ServerThread(config) as server, grpc.insecure_channel(server.grpc_target) as channel:
            start_all(channel, workload, plans)
            _cancel(channel, plans)
            final = wait_all_done(channel, plans, timeout=90 * SCALE)
            checked = _check(plans, final)
        faults = {f.kind: f.hits for f in sim.faults()}
        calls = sim.calls()
        assert duplicate_entities(sim) == 0
    assert sum(faults.values()) > 0
    figures(
        operations=checked,
        databricks_calls=calls,
        faults_injected=sum(faults.values()),
        by_kind=faults,
        lost=0,
        started_twice=0,
    )


def test_a_flaky_store_loses_nothing(tmp_path: Path, figures):
    # Lost answers are injected on updates only: a create whose answer is lost is found
    # again by its request id, but a chain created that way only starts at the next
    # restart (see docs/security.md, "Known limits").
    with SimulatorThread(seed=5) as sim:
        workload = Workload(sim, running=0.3, tag="store")
        plans = workload.plan(24 * SCALE, chains=3 * SCALE, cancels=3 * SCALE)
        store = FlakyStore(
            open_sqlite_store(f"sqlite:///{tmp_path}/lro.db"),
            probability=0.08,
            lost_answer_share=0.3,
            lost_answer_methods=frozenset({"update"}),
            seed=9,
        )
        config = quick_config("sqlite:///unused.db", sim.url)
        with (
            ServerThread(config, store=store) as server,
            grpc.insecure_channel(server.grpc_target) as channel,
        ):
            start_all(channel, workload, plans)
            _cancel(channel, plans)
            final = wait_all_done(channel, plans, timeout=90 * SCALE)
            checked = _check(plans, final)
            assert duplicate_entities(sim) == 0
    assert store.total_injected > 0
    figures(
        operations=checked,
        store_faults_injected=store.total_injected,
        by_method=dict(store.injected),
        lost=0,
        started_twice=0,
    )


def test_store_outage_answers_unavailable_then_recovers(tmp_path: Path, figures):
    with SimulatorThread() as sim:
        workload = Workload(sim, running=0.3, tag="outage")
        plans = workload.plan(6)
        store = FlakyStore(open_sqlite_store(f"sqlite:///{tmp_path}/lro.db"))
        config = quick_config("sqlite:///unused.db", sim.url)
        with (
            ServerThread(config, store=store) as server,
            grpc.insecure_channel(server.grpc_target) as channel,
        ):
            start_all(channel, workload, plans[:3])
            store.down()
            ops = operations_pb2_grpc.OperationsStub(channel)
            answered = 0
            for call, request in (
                (ops.GetOperation, operations_pb2.GetOperationRequest(name=plans[0].name)),
                (ops.ListOperations, operations_pb2.ListOperationsRequest(name="operations")),
                (ops.CancelOperation, operations_pb2.CancelOperationRequest(name=plans[1].name)),
                (ops.WaitOperation, operations_pb2.WaitOperationRequest(name=plans[2].name)),
            ):
                with pytest.raises(grpc.RpcError) as caught:
                    call(request, timeout=10)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
                answered += 1
            path, request = workload.request(plans[3])
            with pytest.raises(grpc.RpcError) as caught:
                channel.unary_unary(path)(request.SerializeToString(), timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            answered += 1
            for route in (f"/v1/{plans[0].name}", "/v1/operations"):
                response = requests.get(server.http_url + route, timeout=10)
                assert response.status_code == 503, response.text
                assert response.json()["error"]["status"] == "UNAVAILABLE"
                answered += 1
            store.up()
            start_all(channel, workload, plans[3:])
            final = wait_all_done(channel, plans, timeout=60)
            checked = _check(plans, final)
    figures(operations=checked, unavailable_answers=answered, internal_answers=0, lost=0)
