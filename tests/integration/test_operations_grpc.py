"""google.longrunning.Operations over gRPC, driven by google-api-core's OperationsClient."""

from __future__ import annotations

import uuid

import grpc
import pytest
import requests
from google.api_core import exceptions, operations_v1
from google.longrunning import operations_pb2
from lro_steps import RUN_METADATA, run_metadata, start_held, wait_done, wait_run_id

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.core.operations import ServiceLimits


@pytest.fixture
def three(sim, jobs, operations, create_job):
    """One succeeded, one failed and one running operation, in creation order."""
    ok, bad, held = create_job("ok"), create_job("bad"), create_job("held")
    sim.set_timeline("runs", "failed", job_id=bad)
    op_ok = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=ok))
    op_bad = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=bad))
    op_held = start_held(jobs, sim, held)
    wait_done(operations, op_ok.name)
    wait_done(operations, op_bad.name)
    wait_run_id(operations, op_held.name)
    return op_ok.name, op_bad.name, op_held.name


def _names(operations, filter_text: str) -> set[str]:
    return {op.name for op in operations.list_operations("operations", filter_text)}


def test_get_returns_typed_metadata(sim, jobs, operations, create_job):
    job_id = create_job()
    op = start_held(jobs, sim, job_id)
    run_id = wait_run_id(operations, op.name)
    got = operations.get_operation(op.name)
    assert got.name == op.name and not got.done
    assert got.metadata.type_url == "type.googleapis.com/" + RUN_METADATA
    meta = run_metadata(got)
    assert meta.job_id == job_id and meta.run_id == run_id
    assert meta.life_cycle_state in ("PENDING", "RUNNING")
    assert meta.run_page_url.endswith(f"/run/{run_id}")
    assert meta.HasField("create_time") and meta.HasField("deadline")


def test_get_unknown_and_malformed(operations):
    with pytest.raises(exceptions.NotFound) as caught:
        operations.get_operation(f"operations/{uuid.uuid4()}")
    assert caught.value.reason == "NOT_FOUND"
    with pytest.raises(exceptions.InvalidArgument) as caught:
        operations.get_operation("operations/not-a-uuid")
    assert caught.value.reason == "MALFORMED_NAME"


def test_done_operation_has_exactly_one_of_response_or_error(operations, three):
    ok, bad, held = (operations.get_operation(n) for n in three)
    assert ok.done and ok.HasField("response") and not ok.HasField("error")
    assert ok.WhichOneof("result") == "response"
    assert bad.done and bad.WhichOneof("result") == "error"
    assert bad.error.code == 2 and "the input table is empty" in bad.error.message
    assert not held.done and held.WhichOneof("result") is None


#: (filter, indexes into the `three` fixture that it selects).
FILTERS = [
    ("", {0, 1, 2}),
    ("done = true", {0, 1}),
    ("done", {0, 1}),
    ("done = false", {2}),
    ("NOT done", {2}),
    ("-done", {2}),
    (f'metadata.@type = "{RUN_METADATA}"', {0, 1, 2}),
    (f'metadata.@type = "type.googleapis.com/{RUN_METADATA}"', {0, 1, 2}),
    ('metadata.@type = "lro.databricks.v1.Other"', set()),
    ("error.code = 2", {1}),
    ("error.code != 2", set()),
    ("NOT error.code = 2", {0, 2}),
    ("error.code:*", {1}),
    ('metadata.state = "RUNNING"', {2}),
    ('metadata.state = "TERMINATED"', {0, 1}),
    ('metadata.state = "TERM*"', {0, 1}),
    ('metadata.state:"RUN"', {2}),
    ("done = true AND error.code = 2", {1}),
    ("done = true error.code = 2", {1}),
    ("error.code = 2 OR done = false", {1, 2}),
    ("done AND (error.code = 2 OR NOT error.code:*)", {0, 1}),
    ("NOT (done = true AND error.code = 2)", {0, 2}),
    ('create_time > "2000-01-01T00:00:00Z"', {0, 1, 2}),
    ('create_time < "2000-01-01T00:00:00+02:00"', set()),
    ('update_time >= "2000-01-01T00:00:00Z"', {0, 1, 2}),
]


def test_list_filters(operations, three):
    # One table, one set of operations: starting them is what costs time.
    wrong = {}
    for filter_text, expected in FILTERS:
        got = {three.index(n) for n in _names(operations, filter_text)}
        if got != expected:
            wrong[filter_text] = (got, expected)
    assert wrong == {}


def test_list_filters_on_name_and_create_time(operations, three):
    ok, bad, held = three
    assert _names(operations, f'name = "{bad}"') == {bad}
    assert _names(operations, f'name != "{bad}"') == {ok, held}
    assert _names(operations, f'name = "{ok}" OR name = "{held}"') == {ok, held}
    assert _names(operations, 'name = "operations/*"') == {ok, bad, held}
    second = run_metadata(operations.get_operation(bad)).create_time.ToJsonString()
    assert _names(operations, f'create_time >= "{second}"') == {bad, held}
    assert _names(operations, f'create_time < "{second}"') == {ok}
    # The stored create time is the metadata's, to the microsecond.
    assert _names(operations, f'create_time = "{second}"') == {bad}
    assert _names(operations, f'create_time <= "{second}"') == {ok, bad}


def test_list_is_newest_first(operations, three):
    listed = [op.name for op in operations.list_operations("operations", "")]
    assert listed == list(reversed(three))


def test_list_accepts_empty_collection_name(operations, three):
    assert {op.name for op in operations.list_operations("", "")} == set(three)


def test_list_pages_through_everything(make_server, sim, create_job):
    server = make_server(limits=ServiceLimits(default_page_size=2, max_page_size=3))
    with grpc.insecure_channel(server.grpc_target) as channel:
        client = operations_v1.OperationsClient(channel)
        jobs = jobs_pb2_grpc.JobsStub(channel)
        job_id = create_job()
        sim.set_timeline("runs", "hold", job_id=job_id)
        created = [jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)).name for _ in range(5)]

        pager = client.list_operations("operations", "")
        pages = [[op.name for op in page] for page in pager.pages]
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [n for page in pages for n in page] == list(reversed(created))

        # Filtered paging: the token stays bound to the same filter across pages.
        iterator = client.list_operations("operations", "done = false")
        assert [op.name for op in iterator] == list(reversed(created))

        # page_size 0 → default; above the maximum → coerced to it.
        stub = operations_pb2.OperationsStub(channel)  # type: ignore[attr-defined]
        list_ = stub.ListOperations
        assert len(list_(operations_pb2.ListOperationsRequest(name="operations")).operations) == 2
        big = list_(operations_pb2.ListOperationsRequest(name="operations", page_size=10**6))
        assert len(big.operations) == 3 and big.next_page_token
        rest = list_(
            operations_pb2.ListOperationsRequest(
                name="operations", page_size=3, page_token=big.next_page_token
            )
        )
        assert len(rest.operations) == 2 and rest.next_page_token == ""


def test_cancel_ends_cancelled_and_cancels_the_run(sim, jobs, operations, create_job):
    op = start_held(jobs, sim, create_job())
    wait_run_id(operations, op.name)
    operations.cancel_operation(op.name)
    done = wait_done(operations, op.name)
    assert done.error.code == 1 and not done.HasField("response")
    assert "cancel" in done.error.message.lower()
    assert sim.calls(path_contains="runs/cancel") == 1


def test_cancel_unknown_and_malformed(operations):
    with pytest.raises(exceptions.NotFound):
        operations.cancel_operation(f"operations/{uuid.uuid4()}")
    with pytest.raises(exceptions.InvalidArgument):
        operations.cancel_operation("operations/")


def test_delete_forgets_without_cancelling(sim, jobs, operations, create_job):
    op = start_held(jobs, sim, create_job())
    run_id = wait_run_id(operations, op.name)
    operations.delete_operation(op.name)
    with pytest.raises(exceptions.NotFound):
        operations.get_operation(op.name)
    with pytest.raises(exceptions.NotFound):
        operations.delete_operation(op.name)
    assert op.name not in {o.name for o in operations.list_operations("operations", "")}
    # The Databricks run goes on: nobody cancelled it.
    run = requests.get(
        f"{sim.url}/api/2.2/jobs/runs/get",
        params={"run_id": run_id},
        headers={"Authorization": "Bearer test-token"},
        timeout=5,
    ).json()
    assert run["state"]["life_cycle_state"] in ("PENDING", "RUNNING")
    assert sim.calls(path_contains="runs/cancel") == 0
    sim.finish_run(run_id, "SUCCESS")
    with pytest.raises(exceptions.NotFound):
        operations.get_operation(op.name)


def test_delete_malformed(operations):
    with pytest.raises(exceptions.InvalidArgument):
        operations.delete_operation("projects/x/operations/y")
