"""docs/durable.md's two complete examples, loaded as written (``--methods``' loader) and
run against a live server and the Databricks simulator."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from durable_helpers import RESOLVE_PATH, metadata, result, start
from google.api_core import operations_v1
from smtp_sink import SmtpSink

from lro_server.cli.methods import load_methods
from lro_server.testing.polling import wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "durable.md"


def _examples() -> dict[str, str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    return {
        match.group(1): block
        for block in blocks
        if (match := re.match(r"# file: (\w+)\.py\n", block))
    }


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    found = _examples()
    assert set(found) == {"acme_publish", "acme_training"}
    for module, code in found.items():
        (tmp_path / f"{module}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    with SmtpSink() as smtp:
        monkeypatch.setenv("ACME_SMTP", smtp.address)
        methods = load_methods("acme_publish,acme_training", entry_points=False)
        yield [methods, smtp]
    for module in found:
        sys.modules.pop(module, None)


def test_the_notebook_resolves_the_promise_then_the_owner_is_emailed(
    sim, make_server, create_job, examples
):
    methods, smtp = examples
    server = make_server(durable_methods=tuple(methods))  # type: ignore[arg-type]
    job = create_job("nightly")
    sim.set_timeline("runs", "hold", job_id=job)
    with grpc.insecure_channel(server.grpc_target) as channel:
        ops = operations_v1.OperationsClient(channel)
        op = start(channel, "acme.PublishAndNotify", {"job_id": job, "owner": "ana@acme.example"})
        run = wait_until(lambda: sim.created("runs", job_id=job), timeout=20, what="run")[0]
        from databricks.sdk import WorkspaceClient

        sdk = WorkspaceClient(host=sim.url, token="test-token", auth_type="pat")
        got = sdk.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run.entity_id})
        assert isinstance(got, dict)
        promise_id = {p["name"]: p["value"] for p in got["job_parameters"]}["promise_id"]
        sim.finish_run(int(run.entity_id))
        # The notebook's last cell, as in the doc.
        requests.post(
            f"{server.http_url}{RESOLVE_PATH}",
            json={"name": promise_id, "value": {"table": "gold.sales"}},
            timeout=30,
        ).raise_for_status()

        answer = result(op, ops)

    assert answer["table"] == "gold.sales" and answer["run"].startswith("http")
    (mail,) = smtp.messages  # type: ignore[attr-defined]
    assert mail["To"] == "ana@acme.example" and mail["Subject"] == "gold.sales is published"
    assert mail["Message-ID"] == answer["message_id"]


def test_a_two_task_job_from_git_is_created_and_run(sim, make_server, examples):
    methods, _ = examples
    server = make_server(durable_methods=tuple(methods))  # type: ignore[arg-type]
    with grpc.insecure_channel(server.grpc_target) as channel:
        ops = operations_v1.OperationsClient(channel)
        op = start(
            channel,
            "acme.TrainModel",
            {"model": "churn", "repo": "https://github.com/acme/ml", "branch": "main"},
        )
        wait_until(lambda: metadata(ops.get_operation(op.name)).state, timeout=20, what="state")
        assert metadata(ops.get_operation(op.name)).state in ("TRAINING", "SUCCEEDED")

        answer = result(op, ops)

    assert answer["result"] == "SUCCESS" and answer["run_id"] > 0
    assert answer["tasks"] == ["features", "train"]
    (job,) = sim.created("jobs")
    assert job.attrs["name"] == "train-churn"
