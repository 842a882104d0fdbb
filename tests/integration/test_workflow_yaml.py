"""workflows/operation_waiter.yaml run by workflows-emulator against a live server.

The server hands each wait to a loopback stand-in of the Cloud Workflows Executions API;
the test runs the YAML in the emulator with the argument the server sent, against the
server's HTTP front through a loopback proxy (which records requests and injects faults).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from chain_helpers import chain_request, get, metadata, resume_http, run_now, running_child
from executions_standin import ExecutionsStandIn
from fault_proxy import FaultProxy
from google.api_core import operations_v1
from google.rpc import code_pb2
from workflows_harness import FAKE_TOKEN, EmulatedWorkflow

from lro_server._proto.lro.databricks.v1 import chains_pb2, chains_pb2_grpc
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread

ROOT = Path(__file__).resolve().parents[2]
WAITER_YAML = ROOT / "workflows" / "operation_waiter.yaml"
LEGACY_YAML = ROOT / "tests" / "fixtures" / "legacy_waiter.yaml"
WORKFLOW = "projects/p/locations/l/workflows/operation-waiter"
State = chains_pb2.StepState.State


@pytest.fixture
def standin() -> Iterator[ExecutionsStandIn]:
    with ExecutionsStandIn() as fake:
        yield fake


@pytest.fixture
def wf_server(make_server: Callable[..., ServerThread], standin: ExecutionsStandIn) -> ServerThread:
    config = ResumeConfig(
        waiter="workflows",
        workflow=WORKFLOW,
        workflows_endpoint=standin.target,
        poll_initial_seconds=1,
        poll_max_seconds=8,
    )
    return make_server(resume=config)


@pytest.fixture
def proxy(wf_server: ServerThread) -> Iterator[FaultProxy]:
    with FaultProxy(wf_server.http_url) as front:
        yield front


@pytest.fixture
def waiter(proxy: FaultProxy) -> EmulatedWorkflow:
    return EmulatedWorkflow(str(WAITER_YAML), env={"LRO_GATEWAY_URL": proxy.url})


@pytest.fixture
def wf_channel(wf_server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(wf_server.grpc_target) as channel:
        yield channel


@pytest.fixture
def ops(wf_channel: grpc.Channel) -> operations_v1.OperationsClient:
    return operations_v1.OperationsClient(wf_channel)


@pytest.fixture
def chains(wf_channel: grpc.Channel) -> chains_pb2_grpc.ChainsStub:
    return chains_pb2_grpc.ChainsStub(wf_channel)


def drive(
    standin: ExecutionsStandIn,
    workflow: EmulatedWorkflow,
    ops: operations_v1.OperationsClient,
    parent: str,
    adapt: Callable[[dict[str, Any]], dict[str, Any]] = lambda args: args,
) -> list[Any]:
    """Run an execution of ``workflow`` for every wait the server hands off, until done."""
    results = []
    while not get(ops, parent).done:
        argument = standin.next_argument(timeout=20)
        assert argument["operation"] == parent
        results.append(workflow.run(adapt(argument)))
        assert len(results) < 10, "too many waits"
    return results


def test_definitions_pass_the_emulators_schema_validation():
    for path in (WAITER_YAML, LEGACY_YAML):
        EmulatedWorkflow(str(path))  # load_workflow validates against the JSON schema
    text = WAITER_YAML.read_text()
    assert 'sys.get_env("LRO_GATEWAY_URL")' in text and "args.gateway" not in text
    assert "http.default_retry_predicate" in text and "next: continue" not in text


def test_two_step_chain_completes_through_the_workflow(
    sim, standin, waiter, proxy, chains, ops, create_job
):
    job_id = create_job("steps")
    op = chains.RunChain(chain_request(run_now("features", job_id), run_now("train", job_id)))
    results = drive(standin, waiter, ops, op.name)
    done = get(ops, op.name)
    assert done.HasField("response"), done.error
    result = chains_pb2.ChainResult()
    done.response.Unpack(result)
    assert [s.run.result_state for s in result.steps] == ["SUCCESS", "SUCCESS"]
    assert [r["outcome"] for r in results] == ["done", "done"]
    assert results[-1]["parent_done"] is True
    # Every call went through the gateway with the workflow's OIDC token.
    assert proxy.count("GetOperation") >= 2 and proxy.count("Chains/RunChain") == 2
    assert all(h.get("Authorization") == f"Bearer {FAKE_TOKEN}" for _p, h, _s in proxy.calls)
    resumes = [h for p, h, _s in proxy.calls if p.endswith("RunChain")]
    assert [h["x-lro-wait-id"] for h in resumes] == ["1", "2"]
    assert standin.created.empty()


def test_failing_first_step_fails_parent_and_never_starts_second(
    sim, standin, waiter, chains, ops, create_job
):
    bad, good = create_job("bad"), create_job("good")
    sim.set_timeline("runs", "failed", job_id=bad)
    op = chains.RunChain(chain_request(run_now("features", bad), run_now("train", good)))
    results = drive(standin, waiter, ops, op.name)
    assert list(results[0]["children"].values()) == ["failed"]
    done = get(ops, op.name)
    assert done.error.code != code_pb2.OK and 'step 1 "features" failed' in done.error.message
    assert [s.state for s in metadata(done).steps] == [State.FAILED, State.SKIPPED]
    assert [c.attrs.get("job_id") for c in sim.created("runs")] == [bad]
    assert standin.created.empty()


def test_waiter_timeout_fails_parent_with_deadline_exceeded(
    sim, standin, waiter, chains, ops, create_job
):
    job_id = create_job("slow")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = chains.RunChain(chain_request(run_now("slow", job_id), timeout=300))
    child = wait_until(lambda: running_child(ops, op.name, 0), timeout=20, what="run")
    results = drive(standin, waiter, ops, op.name)  # virtual time: 300 s pass at once
    assert results[0]["outcome"] == "timeout"
    done = get(ops, op.name)
    assert done.error.code == code_pb2.DEADLINE_EXCEEDED
    assert metadata(done).steps[0].state == State.FAILED
    wait_until(lambda: get(ops, child).done, timeout=20, what="the child to be cancelled")
    assert sim.calls(path_contains="runs/cancel") >= 1
    assert sum(waiter.clock.slept) >= 290


def test_transient_503_from_get_operation_and_resume_is_retried(
    sim, standin, waiter, proxy, chains, ops, create_job
):
    job_id = create_job("ok")
    proxy.fail(r"GetOperation", 503, times=2)
    proxy.fail(r"Chains/RunChain", 503, times=1)
    op = chains.RunChain(chain_request(run_now("only", job_id)))
    results = drive(standin, waiter, ops, op.name)
    assert results[0]["outcome"] == "done" and get(ops, op.name).HasField("response")
    assert proxy.count("GetOperation", 503) == 2 and proxy.count("GetOperation", 200) >= 1
    assert proxy.count("Chains/RunChain", 503) == 1 and proxy.count("Chains/RunChain", 200) == 1


def test_duplicate_and_concurrent_resumes_are_noops(
    sim, standin, waiter, wf_server, chains, ops, create_job
):
    job_id = create_job("held")
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = chains.RunChain(chain_request(run_now("first", job_id), run_now("second", job_id)))
    first_wait = standin.next_argument()
    wait_until(lambda: running_child(ops, op.name, 0), timeout=20, what="run")
    sim.finish_run(int(sim.created("runs")[0].entity_id), "SUCCESS")
    first_child = metadata(get(ops, op.name)).steps[0].operation
    wait_until(lambda: get(ops, first_child).done, timeout=20, what="step 1 to end")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: resume_http(wf_server.http_url, op.name, wait_id=first_wait["waitId"]),
                range(8),
            )
        )
    assert [a.status_code for a in answers] == [200] * 8
    assert len(sim.created("runs")) == 2, "exactly one second step"
    second_wait = standin.next_argument()
    assert second_wait["waitId"] != first_wait["waitId"]
    # The workflow of the first wait runs late (a duplicate): a no-op.
    result = waiter.run(first_wait)
    assert result["parent_done"] is False and len(sim.created("runs")) == 2
    assert standin.created.empty()
    meta = metadata(get(ops, op.name))
    assert [s.state for s in meta.steps] == [State.SUCCEEDED, State.RUNNING]
    sim.finish_run(int(sim.created("runs")[1].entity_id), "SUCCESS")
    assert waiter.run(second_wait)["parent_done"] is True
    # Resuming the finished chain's last wait again is still a no-op.
    again = resume_http(wf_server.http_url, op.name, wait_id=second_wait["waitId"])
    assert again.status_code == 200 and again.json()["done"] is True


def test_resume_errors_change_nothing(sim, wf_server, standin, chains, ops, create_job, jobs):
    from lro_server._proto.lro.databricks.v1 import jobs_pb2

    url = wf_server.http_url
    missing = resume_http(url, "operations/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    job_id = create_job("plain")
    job_op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    foreign = resume_http(url, job_op.name)
    assert foreign.status_code == 400
    assert foreign.json()["error"]["status"] == "FAILED_PRECONDITION"
    held = create_job("held")
    sim.set_timeline("runs", "hold", job_id=held)
    op = chains.RunChain(chain_request(run_now("one", held)))
    standin.next_argument()
    bad = resume_http(url, op.name, outcome="maybe")
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    child = wait_until(lambda: running_child(ops, op.name, 0), timeout=20, what="the run")
    before = get(ops, op.name)
    early = resume_http(url, op.name)  # the child still runs: a no-op
    assert early.status_code == 200 and early.json().get("done") is None
    assert get(ops, op.name) == before
    runs = [c for c in sim.created("runs") if c.attrs.get("job_id") == held]
    sim.finish_run(int(runs[0].entity_id), "SUCCESS")
    wait_until(lambda: get(ops, child).done, timeout=20, what="the run to end")
    assert resume_http(url, op.name).status_code == 200
    assert get(ops, op.name).done
    done_again = resume_http(url, op.name)  # no wait id: the chain is done
    assert done_again.status_code == 400
    assert done_again.json()["error"]["details"][0]["reason"] == "OPERATION_DONE"


def test_legacy_workflow_drives_a_chain_to_completion(
    sim, standin, wf_server, chains, ops, create_job
):
    legacy = EmulatedWorkflow(str(LEGACY_YAML))
    job_id = create_job("legacy")

    def legacy_args(argument: dict[str, Any]) -> dict[str, Any]:
        return {
            "gateway": wf_server.http_url,
            "operation": argument["children"][0],
            "operationId": argument["operationId"],
            "resumeMethod": argument["resumeMethod"],
        }

    op = chains.RunChain(chain_request(run_now("a", job_id), run_now("b", job_id)))
    drive(standin, legacy, ops, op.name, legacy_args)
    assert get(ops, op.name).HasField("response")
    assert len(sim.created("runs")) == 2
