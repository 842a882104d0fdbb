"""Durable methods with the Cloud Workflows waiter: workflows/operation_waiter.yaml in the
workflows emulator polls the children and resumes through ``lro.durable.v1.Methods/Resume``;
timers and promises are resumed by the server itself (no execution is launched for them).
Then: no stranded parents, for RunChain and durable methods alike, when an execution
dies (failed, cancelled, deleted) or never resumes."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import durable_methods
import grpc
import pytest
from chain_helpers import chain_request, run_now
from durable_helpers import metadata, resolve_http, result, start
from executions_standin import ExecutionsStandIn
from google.api_core import operations_v1
from google.rpc import code_pb2
from workflows_harness import EmulatedWorkflow

from lro_server._proto.lro.databricks.v1 import chains_pb2_grpc
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.durable import methods_in
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

ROOT = Path(__file__).resolve().parents[2]
WAITER_YAML = ROOT / "workflows" / "operation_waiter.yaml"
WORKFLOW = "projects/p/locations/l/workflows/operation-waiter"
METHODS = tuple(methods_in(durable_methods))


@pytest.fixture
def standin() -> Iterator[ExecutionsStandIn]:
    with ExecutionsStandIn() as fake:
        yield fake


def _config(standin: ExecutionsStandIn, **overrides: Any) -> ResumeConfig:
    values: dict[str, Any] = {
        "waiter": "workflows",
        "workflow": WORKFLOW,
        "workflows_endpoint": standin.target,
        "poll_initial_seconds": 1,
        "poll_max_seconds": 1,
    }
    values.update(overrides)
    return ResumeConfig(**values)


@pytest.fixture
def wf_server(make_server: Callable[..., ServerThread], standin: ExecutionsStandIn) -> ServerThread:
    return make_server(resume=_config(standin), durable_methods=METHODS)


@pytest.fixture
def waiter(wf_server: ServerThread) -> EmulatedWorkflow:
    return EmulatedWorkflow(str(WAITER_YAML), env={"LRO_GATEWAY_URL": wf_server.http_url})


@pytest.fixture
def channel(wf_server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(wf_server.grpc_target) as chan:
        yield chan


@pytest.fixture
def ops(channel: grpc.Channel) -> operations_v1.OperationsClient:
    return operations_v1.OperationsClient(channel)


def drive(
    standin: ExecutionsStandIn,
    workflow: EmulatedWorkflow,
    ops: operations_v1.OperationsClient,
    parent: str,
    *,
    between: Callable[[], None] = lambda: None,
) -> list[Any]:
    """Run the workflow for every execution the server launches, until the parent is done
    (waits on timers or promises launch none: the server resumes those itself)."""
    runs: list[Any] = []
    for _ in range(600):
        if ops.get_operation(parent).done:
            return runs
        between()
        try:
            argument = standin.next_argument(timeout=0.1)
        except queue.Empty:
            continue
        assert argument["resumeMethod"] == "lro.durable.v1.Methods/Resume"
        runs.append(workflow.run(argument))
    raise AssertionError("the parent did not finish")


def test_fan_out_completes_through_the_workflow(sim, standin, waiter, channel, ops, create_job):
    a, b = create_job("a"), create_job("b")
    op = start(channel, "test.FanOut", {"a": a, "b": b})

    runs = drive(standin, waiter, ops, op.name)

    assert [r["outcome"] for r in runs] == ["done"]
    assert len(runs[0]["children"]) == 2
    answer = result(ops.get_operation(op.name), ops)
    assert all(run_id > 0 for run_id in answer["runs"])


def test_a_caught_failure_then_a_recovery_call(sim, standin, waiter, channel, ops, create_job):
    bad, good = create_job("bad"), create_job("good")
    sim.set_timeline("runs", "failed", job_id=bad)
    op = start(channel, "test.Recover", {"bad": bad, "good": good})

    runs = drive(standin, waiter, ops, op.name)

    assert list(runs[0]["children"].values()) == ["failed"]
    assert result(ops.get_operation(op.name), ops)["recovered"] > 0


def test_an_uncaught_failure_fails_the_method(sim, standin, waiter, channel, ops, create_job):
    bad = create_job("bad")
    sim.set_timeline("runs", "failed", job_id=bad)
    op = start(channel, "test.Uncaught", {"bad": bad})
    drive(standin, waiter, ops, op.name)
    assert ops.get_operation(op.name).error.code != code_pb2.OK


def test_a_promise_and_a_sleep_need_no_execution(
    sim, standin, waiter, wf_server, channel, ops, create_job, tmp_path
):
    job = create_job("publish")
    before = len(durable_methods.EFFECTS)
    op = start(channel, "test.Notebook", {"job": job, "owner": "bo@example.com"})
    resolved: list[str] = []

    def notebook() -> None:
        meta = metadata(ops.get_operation(op.name))
        promises = [w for w in meta.waiting_on if "." in w and not w.startswith("operations/")]
        if promises and not resolved:
            assert resolve_http(wf_server.http_url, promises[0], "done").status_code == 200
            resolved.append(promises[0])

    runs = drive(standin, waiter, ops, op.name, between=notebook)

    assert len(runs) == 1  # the child's wait only; the promise's wait launched nothing
    assert result(ops.get_operation(op.name), ops)["published"] == "done"
    assert len(durable_methods.EFFECTS) == before + 1
    log = tmp_path / "sleep.log"
    sleeper = start(channel, "test.Sleeper", {"log": str(log), "seconds": 1})
    assert result(sleeper, ops) == {"slept": 1}
    assert log.read_text() == "before\nafter\n"
    assert standin.created.empty()


def test_the_timeout_reported_by_the_workflow_cancels_children(
    sim, standin, waiter, channel, ops, create_job
):
    job = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job)
    op = start(channel, "test.Hold", {"job": job}, timeout=300)

    runs = drive(standin, waiter, ops, op.name)  # virtual time: 300 s pass at once

    assert runs[0]["outcome"] == "timeout"
    done = ops.get_operation(op.name)
    assert done.error.code == code_pb2.DEADLINE_EXCEEDED
    for child in [s.operation for s in metadata(done).steps if s.operation]:
        wait_until(lambda c=child: ops.get_operation(c).done, timeout=20, what="cancelled")


# -- no stranded parents ---------------------------------------------------------------------


@pytest.mark.parametrize("death", ["FAILED", "CANCELLED", "deleted"])
def test_a_dead_execution_is_replaced_once_for_chains_and_durable_methods(
    sim, make_server, standin, create_job, death
):
    config = _config(standin, stall_seconds=0.3)
    replicas = [make_server(resume=config, durable_methods=METHODS) for _ in range(2)]
    job = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job)
    with grpc.insecure_channel(replicas[0].grpc_target) as channel:
        ops = operations_v1.OperationsClient(channel)
        chain = chains_pb2_grpc.ChainsStub(channel).RunChain(chain_request(run_now("s", job)))
        method = start(channel, "test.Uncaught", {"bad": job})
        parents = {chain.name, method.name}
        first = {}
        for _ in range(2):
            argument = standin.next_argument()
            first[argument["operation"]] = (standin.names[-1], int(argument["waitId"]))
        assert set(first) == parents
        for execution, _ in first.values():  # both executions die
            if death == "deleted":
                del standin.states[execution]
            else:
                standin.states[execution] = death

        replacements = [standin.next_argument(timeout=30) for _ in range(2)]

        assert {argument["operation"] for argument in replacements} == parents
        for argument in replacements:  # a new wait each, handed off again
            assert int(argument["waitId"]) == first[argument["operation"]][1] + 1
        with pytest.raises(queue.Empty):
            standin.created.get(timeout=1.0)  # once, although two replicas sweep
        # The replacement executions do the job of the dead ones.
        waiter = EmulatedWorkflow(str(WAITER_YAML), env={"LRO_GATEWAY_URL": replicas[1].http_url})
        for run in sim.created("runs"):
            sim.finish_run(int(run.entity_id))
        for argument in replacements:
            assert waiter.run(argument)["outcome"] == "done"
        assert ops.get_operation(chain.name).HasField("response")
        assert ops.get_operation(method.name).HasField("response")


def test_children_done_but_never_resumed_are_resumed_by_the_server(
    sim, make_server, standin, create_job
):
    server = make_server(resume=_config(standin, stall_seconds=0.3), durable_methods=METHODS)
    job = create_job("quick")
    with grpc.insecure_channel(server.grpc_target) as channel:
        ops = operations_v1.OperationsClient(channel)
        chain = chains_pb2_grpc.ChainsStub(channel).RunChain(chain_request(run_now("s", job)))
        method = start(channel, "test.FanOut", {"a": job, "b": job})
        standin.next_argument()
        standin.next_argument()
        # The executions stay ACTIVE and never call back (an execution stuck in a quota).
        for parent in (chain.name, method.name):
            wait_until(lambda p=parent: ops.get_operation(p).done, timeout=30, what="parent")
        assert ops.get_operation(chain.name).HasField("response")
        assert ops.get_operation(method.name).HasField("response")
