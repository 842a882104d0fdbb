"""Webhook push end to end: the simulator delivers Databricks job notifications (basic
auth) to POST /databricks/webhooks/jobs, and the operation completes at once instead of at
its next poll; on another replica through the store's hint; forged, unauthenticated and
malformed calls change nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import grpc
import pytest
from google.api_core import operation

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.http.webhooks import PATH, WebhookCredentials
from lro_server.testing.polling import wait_until

USER, PASSWORD = "databricks", "s3cret-Pa55"
DESTINATION = "0f1e2d3c-dest"
#: Polls so slow that only a push can finish an operation within a test.
SLOW = {"poll_interval_seconds": 120.0, "max_poll_interval_seconds": 120.0}


def _post(url: str, body: Any, auth: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + PATH, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def pushed(make_server, sim):
    server = make_server(
        webhook=WebhookCredentials(USER, PASSWORD), webhook_destination_id=DESTINATION, **SLOW
    )
    sim.add_webhook_destination(
        DESTINATION, server.http_url + PATH, username=USER, password=PASSWORD
    )
    return server


def _submit(channel: grpc.Channel) -> Any:
    jobs = jobs_pb2_grpc.JobsStub(channel)
    task = {"task_key": "main", "notebook_task": {"notebook_path": "/x"}}
    from google.protobuf import json_format

    request = json_format.ParseDict(
        {"run_name": "pushed", "tasks": [task]}, jobs_pb2.SubmitRunRequest()
    )
    return jobs.Submit(request)


def test_a_webhook_completes_the_operation_at_once(pushed, sim, operations):
    sim.set_timeline("runs", "hold", run_name="pushed")
    with grpc.insecure_channel(pushed.grpc_target) as channel:
        op = _submit(channel)
    fut = operation.from_gapic(op, operations, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata)
    run_id = wait_until(
        lambda: fut._refresh_and_update() or (fut.metadata and fut.metadata.run_id),
        timeout=20,
        what="the run id",
    )
    submitted = sim.call_log(path_contains="runs/submit")[0]
    assert submitted is not None
    sim.finish_run(run_id, "SUCCESS")
    started = time.monotonic()
    run = fut.result(timeout=30)
    assert run.result_state == "SUCCESS"
    assert time.monotonic() - started < 20  # the next poll was two minutes away

    def answered() -> list[tuple[str, int]]:
        return [(d.event_type, d.status) for d in sim.webhook_deliveries() if d.status]

    assert ("jobs.on_success", 200) in wait_until(answered, timeout=20, what="the webhook")


def test_submitted_runs_carry_the_destination(pushed, sim):
    sim.set_timeline("runs", "hold")
    with grpc.insecure_channel(pushed.grpc_target) as channel:
        op = _submit(channel)
    wait_until(lambda: sim.created("runs"), timeout=20, what="the run")
    deliveries = wait_until(
        lambda: [
            d for d in sim.webhook_deliveries() if d.event_type == "jobs.on_start" and d.status
        ],
        timeout=20,
        what="an on_start webhook answered",
    )
    assert deliveries[0].status == 200 and op.name


def test_forged_unauthenticated_and_malformed_calls_change_nothing(pushed, sim, operations):
    sim.set_timeline("runs", "hold")
    with grpc.insecure_channel(pushed.grpc_target) as channel:
        op = _submit(channel)
    run_id = int(wait_until(lambda: sim.created("runs"), timeout=20, what="the run")[0].entity_id)
    payload = {"event_type": "jobs.on_success", "run": {"run_id": run_id}, "job": {"job_id": 1}}
    # Once the first poll wrote RUNNING, the next one is two minutes away: any read of the
    # run from here on is the hint's.
    wait_until(
        lambda: b"RUNNING" in operations.get_operation(op.name).metadata.value,
        timeout=20,
        what="the first poll",
    )
    get_calls = sim.calls(path_contains="runs/get")
    for auth in (None, (USER, "wrong"), ("someone", PASSWORD)):
        status, body = _post(pushed.http_url, payload, auth)
        assert status == 401, body
    for bad in (
        b"{not json",
        [1, 2],
        {"event_type": "jobs.on_success"},
        {"run": {}},
        {
            "event_type": "jobs.on_failure",
            "run": {"run_id": "abc"},
        },
    ):
        status, body = _post(pushed.http_url, bad, (USER, PASSWORD))
        assert status == 400, (bad, body)
    assert sim.calls(path_contains="runs/get") == get_calls  # nothing re-read
    # A forged success is only a hint: the server reads the run, still RUNNING.
    status, body = _post(pushed.http_url, payload, (USER, PASSWORD))
    assert status == 200 and body == {"refreshed": 1}
    wait_until(
        lambda: sim.calls(path_contains="runs/get") > get_calls, timeout=20, what="a re-read"
    )
    with grpc.insecure_channel(pushed.grpc_target) as other:
        from google.longrunning import operations_pb2, operations_pb2_grpc

        latest = operations_pb2_grpc.OperationsStub(other).GetOperation(
            operations_pb2.GetOperationRequest(name=op.name)
        )
    assert not latest.done


def test_webhook_push_off_says_how_to_turn_it_on(server):
    status, body = _post(server.http_url, {"event_type": "jobs.on_start"}, (USER, PASSWORD))
    assert status == 404
    assert "LRO_WEBHOOK_USERNAME" in body["error"]["message"]


def test_a_hint_reaches_the_replica_that_tracks_the_operation(make_server, sim):
    # Two replicas on one store; Databricks' webhook reaches the one that does not track
    # the run. It leaves a hint in the store; the holder sees it at its next lease renewal.
    credentials = WebhookCredentials(USER, PASSWORD)
    holder = make_server(webhook=credentials, lease_seconds=1.5, replica_id="holder", **SLOW)
    other = make_server(webhook=credentials, lease_seconds=1.5, replica_id="other", **SLOW)
    sim.add_webhook_destination(
        DESTINATION, other.http_url + PATH, username=USER, password=PASSWORD
    )
    sim.set_timeline("runs", "hold", run_name="pushed")
    with grpc.insecure_channel(holder.grpc_target) as channel:
        task = {"task_key": "main", "notebook_task": {"notebook_path": "/x"}}
        from google.protobuf import json_format

        body = {
            "run_name": "pushed",
            "tasks": [task],
            "webhook_notifications": {"on_success": [{"id": DESTINATION}]},
        }
        op = jobs_pb2_grpc.JobsStub(channel).Submit(
            json_format.ParseDict(body, jobs_pb2.SubmitRunRequest())
        )
        from google.api_core import operations_v1

        ops = operations_v1.OperationsClient(channel)
        fut = operation.from_gapic(op, ops, jobs_pb2.Run, metadata_type=jobs_pb2.RunMetadata)
        run_id = wait_until(
            lambda: fut._refresh_and_update() or (fut.metadata and fut.metadata.run_id),
            timeout=20,
            what="the run id",
        )
        sim.finish_run(run_id, "SUCCESS")
        assert fut.result(timeout=30).result_state == "SUCCESS"
    assert other.application.hints.remote >= 1
    assert other.application.hints.local == 0
