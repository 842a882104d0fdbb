"""RunChain with the embedded waiter (the default): google-api-core against a real server."""

from __future__ import annotations

import grpc
import pytest
from chain_helpers import chain_request, future, get, metadata, run_now, running_child, submit
from google.api_core import exceptions, operations_v1
from google.rpc import code_pb2

from lro_server._proto.lro.databricks.v1 import chains_pb2, chains_pb2_grpc
from lro_server.testing.polling import wait_until

State = chains_pb2.StepState.State


@pytest.fixture
def chains(channel: grpc.Channel) -> chains_pb2_grpc.ChainsStub:
    return chains_pb2_grpc.ChainsStub(channel)


def test_two_step_chain_returns_typed_result(sim, chains, operations, create_job):
    job_id = create_job("features")
    op = chains.RunChain(chain_request(run_now("features", job_id), submit("train", "training")))
    assert op.name.startswith("operations/") and not op.done
    result = future(op, operations).result(timeout=30)
    assert isinstance(result, chains_pb2.ChainResult)
    assert [s.name for s in result.steps] == ["features", "train"]
    assert all(s.run.result_state == "SUCCESS" and s.run.run_id > 0 for s in result.steps)
    assert result.steps[0].run.job_id == job_id and result.steps[0].run.run_page_url
    meta = metadata(get(operations, op.name))
    assert [s.state for s in meta.steps] == [State.SUCCEEDED, State.SUCCEEDED]
    assert meta.current_step == -1 and meta.HasField("end_time")
    # Children are ordinary Jobs operations: listed, each with its run.
    names = {o.name for o in operations.list_operations("operations", "")}
    assert {s.operation for s in meta.steps} <= names
    assert len(sim.created("runs")) == 2
    submitted = [c for c in sim.created("runs") if c.attrs.get("run_name") == "training"]
    assert submitted, "the submit step reached runs/submit"


def test_failing_first_step_fails_parent_and_never_starts_second(
    sim, chains, operations, create_job
):
    bad, good = create_job("bad"), create_job("good")
    sim.set_timeline("runs", "failed", job_id=bad)
    op = chains.RunChain(chain_request(run_now("features", bad), run_now("train", good)))
    with pytest.raises(exceptions.GoogleAPICallError) as caught:
        future(op, operations).result(timeout=30)
    assert 'step 1 "features" failed' in caught.value.message
    done = get(operations, op.name)
    meta = metadata(done)
    assert meta.failed_step == "features"
    assert [s.state for s in meta.steps] == [State.FAILED, State.SKIPPED]
    assert meta.steps[0].result_state == "FAILED" and meta.steps[0].error.message
    assert [c.attrs.get("job_id") for c in sim.created("runs")] == [bad]


def test_child_timeout_fails_parent_with_deadline_exceeded(sim, chains, operations, create_job):
    job_id = create_job("slow")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = chains.RunChain(chain_request(run_now("slow", job_id, timeout=1), run_now("next", job_id)))
    with pytest.raises(exceptions.GoogleAPICallError):
        future(op, operations).result(timeout=30)
    done = get(operations, op.name)
    assert done.error.code == code_pb2.DEADLINE_EXCEEDED
    assert len(sim.created("runs")) == 1


def test_chain_timeout_cancels_running_child(sim, chains, operations, create_job):
    job_id = create_job("slow")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = chains.RunChain(chain_request(run_now("slow", job_id), timeout=2))
    with pytest.raises(exceptions.GoogleAPICallError):
        future(op, operations).result(timeout=30)
    done = get(operations, op.name)
    assert done.error.code == code_pb2.DEADLINE_EXCEEDED
    child = get(operations, metadata(done).steps[0].operation)
    assert wait_until(lambda: get(operations, child.name).done, timeout=20, what="child ends")
    assert sim.calls(path_contains="runs/cancel") >= 1


def test_cancel_parent_cancels_running_child_and_stops(sim, chains, operations, create_job):
    job_id = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = chains.RunChain(chain_request(run_now("long", job_id), run_now("never", job_id)))
    child = wait_until(lambda: running_child(operations, op.name, 0), timeout=20, what="run")
    operations.cancel_operation(op.name)
    fut = future(op, operations)
    with pytest.raises(exceptions.GoogleAPICallError):
        fut.result(timeout=30)
    assert fut.cancelled()
    assert get(operations, child).error.code == code_pb2.CANCELLED
    meta = metadata(get(operations, op.name))
    assert [s.state for s in meta.steps] == [State.CANCELLED, State.SKIPPED]
    assert sim.calls(path_contains="runs/cancel") >= 1
    assert len(sim.created("runs")) == 1


def test_restart_while_parent_waits(sim, make_server, create_job):
    job_id = create_job("held")
    sim.set_timeline("runs", "hold", job_id=job_id)
    first = make_server()
    with grpc.insecure_channel(first.grpc_target) as channel:
        stub = chains_pb2_grpc.ChainsStub(channel)
        ops = operations_v1.OperationsClient(channel)
        op = stub.RunChain(chain_request(run_now("held", job_id), run_now("after", job_id)))
        child = wait_until(lambda: running_child(ops, op.name, 0), timeout=20, what="run")
    first.stop()
    run_id = int(sim.created("runs")[0].entity_id)
    sim.clear_timelines()
    sim.finish_run(run_id, "SUCCESS")
    second = make_server()
    with grpc.insecure_channel(second.grpc_target) as channel:
        ops = operations_v1.OperationsClient(channel)
        result = future(ops.get_operation(op.name), ops).result(timeout=30)
    assert [s.name for s in result.steps] == ["held", "after"]
    assert result.steps[0].operation == child
    assert len(sim.created("runs")) == 2


def test_parent_metadata_shows_the_running_steps_databricks_state(
    sim, chains, operations, create_job
):
    job_id = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = chains.RunChain(chain_request(run_now("long", job_id)))

    def live_step():
        step = metadata(get(operations, op.name)).steps[0]
        return step if step.life_cycle_state == "RUNNING" and step.run_id else None

    step = wait_until(live_step, timeout=20, what="the running step's state in the parent")
    assert step.state == State.RUNNING and step.run_page_url
    assert not get(operations, op.name).done
    sim.finish_run(step.run_id, "SUCCESS")
    result = future(op, operations).result(timeout=30)
    assert result.steps[0].run.result_state == "SUCCESS"
