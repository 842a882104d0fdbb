"""Durable methods end to end with the embedded waiter: a real server (gRPC and HTTP), the
Databricks simulator through the real SDK, google-api-core's client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import durable_methods
import grpc
import pytest
from durable_helpers import metadata, resolve_http, result, resume_http, start
from google.api_core import exceptions, operations_v1
from google.rpc import code_pb2

from lro_server._proto.lro.durable.v1 import methods_pb2
from lro_server.durable import methods_in
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

METHODS = tuple(methods_in(durable_methods))


@pytest.fixture
def dserver(make_server: Callable[..., ServerThread]) -> ServerThread:
    return make_server(durable_methods=METHODS)


@pytest.fixture
def dchannel(dserver: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(dserver.grpc_target) as channel:
        yield channel


@pytest.fixture
def ops(dchannel: grpc.Channel) -> operations_v1.OperationsClient:
    return operations_v1.OperationsClient(dchannel)


def test_fan_out_with_gather_returns_both_runs(sim, dchannel, ops, create_job):
    a, b = create_job("a"), create_job("b")
    op = start(dchannel, "test.FanOut", {"a": a, "b": b})
    assert op.name.startswith("operations/") and not op.done

    answer = result(op, ops)

    assert all(isinstance(run_id, int) and run_id > 0 for run_id in answer["runs"])
    assert all(url.startswith("http") for url in answer["urls"])
    meta = metadata(ops.get_operation(op.name))
    calls = [s for s in meta.steps if s.kind == methods_pb2.Step.CALL]
    assert [s.state for s in calls] == [methods_pb2.Step.SUCCEEDED] * 2
    # Children are ordinary operations: listed, each with its run, started once.
    listed = {o.name for o in ops.list_operations("operations", "")}
    assert {s.operation for s in calls} <= listed
    assert sorted(c.attrs["job_id"] for c in sim.created("runs")) == sorted([a, b])


def test_a_caught_failure_is_followed_by_a_recovery_call(sim, dchannel, ops, create_job):
    bad, good = create_job("bad"), create_job("good")
    sim.set_timeline("runs", "failed", job_id=bad)

    answer = result(start(dchannel, "test.Recover", {"bad": bad, "good": good}), ops)

    assert answer["failed_code"] != 0 and answer["failed"].startswith("operations/")
    assert answer["recovered"] > 0
    assert [c.attrs["job_id"] for c in sim.created("runs")] == [bad, good]


def test_an_uncaught_failure_fails_the_method_with_the_childs_error(sim, dchannel, ops, create_job):
    bad = create_job("bad")
    sim.set_timeline("runs", "failed", job_id=bad)
    op = start(dchannel, "test.Uncaught", {"bad": bad})

    with pytest.raises(exceptions.GoogleAPICallError):
        result(op, ops)

    done = ops.get_operation(op.name)
    child = next(s for s in metadata(done).steps if s.kind == methods_pb2.Step.CALL)
    assert done.error.code == ops.get_operation(child.operation).error.code != 0
    assert done.error.message == ops.get_operation(child.operation).error.message


def test_the_notebook_resolves_the_promise_over_http_then_the_email_is_sent(
    sim, dserver, dchannel, ops, create_job
):
    job = create_job("publish")
    sim.set_timeline("runs", "hold", job_id=job)
    before = len(durable_methods.EFFECTS)
    op = start(dchannel, "test.Notebook", {"job": job, "owner": "ana@example.com"})

    # The notebook: it reads its parameter and, when done, resolves the promise by HTTP.
    run = wait_until(lambda: sim.created("runs", job_id=job), timeout=20, what="the run")[0]
    from databricks.sdk import WorkspaceClient

    sdk = WorkspaceClient(host=sim.url, token="test-token", auth_type="pat")
    got = sdk.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run.entity_id})
    assert isinstance(got, dict)
    params = {p["name"]: p["value"] for p in got["job_parameters"]}
    promise = params["promise_id"]
    sim.finish_run(int(run.entity_id))
    answer = resolve_http(dserver.http_url, promise, {"table": "gold.sales", "rows": 1200})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "RESOLVED"

    done = result(op, ops)

    assert done["published"] == {"table": "gold.sales", "rows": 1200}
    assert done["run"].startswith("http")
    (email,) = durable_methods.EFFECTS[before:]
    assert email[1]["to"] == "ana@example.com"
    # A second answer changes nothing; a wrong id is NOT_FOUND, like a missing one.
    again = resolve_http(dserver.http_url, promise, "other")
    assert again.status_code == 200 and again.json()["value"] == {
        "table": "gold.sales",
        "rows": 1200,
    }
    wrong = resolve_http(dserver.http_url, promise[:-4] + "0000", 1)
    missing = resolve_http(
        dserver.http_url, "00000000-0000-4000-8000-000000000000.0." + "a" * 32, 1
    )
    assert wrong.status_code == missing.status_code == 404
    assert wrong.json()["error"]["message"] == missing.json()["error"]["message"]


def test_a_step_runs_once_across_a_restart_after_it_was_recorded(
    make_server, store_url, tmp_path: Path
):
    log = tmp_path / "effects.log"
    first = make_server(durable_methods=METHODS)
    with grpc.insecure_channel(first.grpc_target) as channel:
        op = start(channel, "test.Sleeper", {"log": str(log), "seconds": 2})
        ops = operations_v1.OperationsClient(channel)
        wait_until(
            lambda: metadata(ops.get_operation(op.name)).waiting_on, timeout=20, what="sleeping"
        )
    first.stop()
    assert log.read_text() == "before\n"

    second = make_server(durable_methods=METHODS)
    with grpc.insecure_channel(second.grpc_target) as channel:
        answer = result(op, operations_v1.OperationsClient(channel))

    assert answer == {"slept": 2}
    assert log.read_text() == "before\nafter\n"


def test_a_journal_mismatch_fails_with_failed_precondition(sim, dchannel, ops, create_job):
    jobs = [create_job("one"), create_job("two")]
    sim.set_timeline("runs", "hold", job_id=jobs[0])
    op = start(dchannel, "test.Drifting", {"jobs": jobs})
    run = wait_until(lambda: sim.created("runs", job_id=jobs[0]), timeout=20, what="run")[0]
    durable_methods.DRIFT["index"] = 1  # the code now calls another job at position 0
    try:
        sim.finish_run(int(run.entity_id))  # the child ends: the method is replayed
        done = wait_until(lambda: (o := ops.get_operation(op.name)).done and o, timeout=20)
    finally:
        durable_methods.DRIFT["index"] = 0
    assert done.error.code == code_pb2.FAILED_PRECONDITION
    assert "position 0" in done.error.message and done.error.message.count("request") == 2
    assert len(sim.created("runs")) == 1


def test_cancel_cancels_the_running_children_then_the_method(sim, dchannel, ops, create_job):
    job = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job)
    op = start(dchannel, "test.Hold", {"job": job})
    children = wait_until(
        lambda: (
            [s.operation for s in metadata(ops.get_operation(op.name)).steps if s.operation]
            if len(sim.created("runs")) == 2
            else []
        ),
        timeout=20,
        what="two running children",
    )

    ops.cancel_operation(op.name)

    done = wait_until(lambda: (o := ops.get_operation(op.name)).done and o, timeout=30)
    assert done.error.code == code_pb2.CANCELLED
    for child in children:
        wait_until(lambda c=child: ops.get_operation(c).done, timeout=20, what="child cancelled")
        assert ops.get_operation(child).error.code == code_pb2.CANCELLED
    assert sim.calls(path_contains="runs/cancel") >= 2


def test_the_timeout_fails_the_method_and_cancels_its_children(sim, dchannel, ops, create_job):
    job = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job)
    op = start(dchannel, "test.Hold", {"job": job}, timeout=2)

    done = wait_until(lambda: (o := ops.get_operation(op.name)).done and o, timeout=30)

    assert done.error.code == code_pb2.DEADLINE_EXCEEDED
    children = [s.operation for s in metadata(done).steps if s.operation]
    for child in children:
        wait_until(lambda c=child: ops.get_operation(c).done, timeout=20, what="child cancelled")
        assert ops.get_operation(child).error.code == code_pb2.CANCELLED


def test_duplicate_and_concurrent_resumes_change_nothing(sim, dserver, dchannel, ops, create_job):
    job = create_job("long")
    sim.set_timeline("runs", "hold", job_id=job)
    op = start(dchannel, "test.Hold", {"job": job})
    wait_until(lambda: metadata(ops.get_operation(op.name)).waiting_on, timeout=20, what="wait")
    before = ops.get_operation(op.name)

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: resume_http(dserver.http_url, op.name), range(4)))
    stale = resume_http(dserver.http_url, op.name, x_lro_wait_id="1")

    assert all(a.status_code == 200 for a in [*answers, stale]), [a.text for a in answers]
    assert ops.get_operation(op.name) == before
    assert len(sim.created("runs")) == 2


def test_start_refuses_what_it_cannot_run(dserver, dchannel):
    from lro_server._proto.lro.durable.v1 import methods_pb2_grpc

    stub = methods_pb2_grpc.MethodsStub(dchannel)
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Start(methods_pb2.StartRequest(method="acme.Nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as empty:
        stub.Start(methods_pb2.StartRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    nan = methods_pb2.StartRequest(method="test.Hold")
    nan.input.update({"job": 1})
    nan.input["job"] = float("nan")
    with pytest.raises(grpc.RpcError) as unrepresentable:
        stub.Start(nan)
    assert unrepresentable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input" in unrepresentable.value.details()
    promise = methods_pb2.ResolvePromiseRequest(name="x.1.y")
    promise.value.number_value = float("inf")
    with pytest.raises(grpc.RpcError) as infinite:
        stub.ResolvePromise(promise)
    assert infinite.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    resume = resume_http(dserver.http_url, "operations/00000000-0000-4000-8000-000000000000")
    assert resume.status_code == 404
