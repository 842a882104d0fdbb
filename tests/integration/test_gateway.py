"""The HTTP gateway: POST /{package.Service}/{Method} with proto3 JSON, as Workflows calls it."""

from __future__ import annotations

from typing import Any

import requests
from google.protobuf import empty_pb2, struct_pb2
from lro_steps import RUN_METADATA, wait_run_id

from lro_server.api.context import CallContext
from lro_server.api.registry import Method
from lro_server.testing.polling import wait_until

GET = "/google.longrunning.Operations/GetOperation"
RUN_NOW = "/lro.databricks.v1.Jobs/RunNow"


def _post(server: Any, path: str, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(server.http_url + path, json=body, headers=headers, timeout=10)


def _final(server: Any, name: str) -> dict[str, Any]:
    """GetOperation through the gateway until the answer says done."""

    def done() -> dict[str, Any] | None:
        answer: dict[str, Any] = _post(server, GET, {"name": name}).json()
        return answer if answer.get("done") else None

    final: dict[str, Any] = wait_until(done, timeout=10, what=f"{name} to finish")
    return final


def test_get_operation_omits_done_while_running(sim, server, operations, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    started = _post(server, RUN_NOW, {"job_id": job_id})
    assert started.status_code == 200, started.text
    name = started.json()["name"]
    run_id = wait_run_id(operations, name)

    running = _post(server, GET, {"name": name})
    assert running.status_code == 200
    assert running.headers["Content-Type"].startswith("application/json")
    body = running.json()
    assert body["name"] == name
    assert "done" not in body and "response" not in body and "error" not in body
    assert body["metadata"]["@type"] == "type.googleapis.com/" + RUN_METADATA
    assert body["metadata"]["jobId"] == str(job_id)  # int64 as a string, per proto3 JSON
    assert body["metadata"]["runId"] == str(run_id)

    sim.finish_run(run_id, "SUCCESS")

    final = _final(server, name)
    assert final["done"] is True
    assert final["response"]["@type"] == "type.googleapis.com/lro.databricks.v1.Run"
    assert final["response"]["resultState"] == "SUCCESS"
    assert "error" not in final


def test_failed_operation_json_carries_the_error(sim, server, operations, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    name = _post(server, RUN_NOW, {"job_id": job_id}).json()["name"]
    sim.finish_run(wait_run_id(operations, name), "FAILED", state_message="bad input")
    final = _final(server, name)
    assert final["error"]["code"] == 2 and "bad input" in final["error"]["message"]
    assert "response" not in final


def test_run_now_with_databricks_field_names(sim, server, operations, create_job):
    job_id = create_job()
    sim.set_timeline("runs", "hold", job_id=job_id)
    sent: list[tuple[str, str, Any]] = []
    dbx = server.application.databricks
    call = dbx.call

    async def recording(method: str, path: str, **kwargs: Any) -> Any:
        sent.append((method, path, kwargs.get("body")))
        return await call(method, path, **kwargs)

    dbx.call = recording
    body = {
        "job_id": job_id,
        "notebook_params": {"date": "2024-05-01", "mode": "full"},
        "job_parameters": {"env": "prod"},
        "python_params": ["--verbose", "2"],
        "queue": {"enabled": True},
        "request_id": "wf-123",
        "timeout": "600s",
    }
    answer = _post(server, RUN_NOW, body)
    assert answer.status_code == 200, answer.text
    name = answer.json()["name"]
    run_id = wait_run_id(operations, name)

    run_now = [b for m, p, b in sent if m == "POST" and p.endswith("/jobs/run-now")]
    assert len(run_now) == 1
    received = run_now[0]
    assert received["job_id"] == job_id and isinstance(received["job_id"], int)
    assert received["notebook_params"] == {"date": "2024-05-01", "mode": "full"}
    assert received["job_parameters"] == {"env": "prod"}
    assert received["python_params"] == ["--verbose", "2"]
    assert received["queue"] == {"enabled": True}
    assert received["idempotency_token"]
    for ours in ("request_id", "timeout"):
        assert ours not in received
    # The simulator saw them too (it keeps the job parameters of the run).
    run = requests.get(
        f"{sim.url}/api/2.2/jobs/runs/get",
        params={"run_id": run_id},
        headers={"Authorization": "Bearer test-token"},
        timeout=5,
    ).json()
    assert {p["name"]: p["value"] for p in run["job_parameters"]} == {"env": "prod"}
    # And the request id made it: the same body gives the same operation.
    assert _post(server, RUN_NOW, body).json()["name"] == name
    assert len(sim.created("runs")) == 1


def test_headers_reach_handlers_as_metadata(server):
    seen: list[CallContext] = []

    async def echo(request: empty_pb2.Empty, ctx: CallContext) -> struct_pb2.Struct:
        seen.append(ctx)
        out = struct_pb2.Struct()
        out.update(dict(ctx.metadata))
        return out

    server.application.registry.add(
        Method("test.v1.Echo", "Headers", empty_pb2.Empty, struct_pb2.Struct, echo)
    )
    response = _post(
        server,
        "/test.v1.Echo/Headers",
        {},
        **{"X-Alis-Operation-Id": "0b7e3c1a", "X-Custom": "v", "Traceparent": "00-ab-cd-01"},
    )
    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata["x-alis-operation-id"] == "0b7e3c1a"
    assert metadata["x-custom"] == "v" and metadata["traceparent"] == "00-ab-cd-01"
    assert "content-length" not in metadata and "host" not in metadata
    assert seen[0].resume_id == "0b7e3c1a"
