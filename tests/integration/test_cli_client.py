"""`lro` end to end against a live server and the Databricks simulator.

Most tests call ``main()`` in-process (stdout is not a terminal under pytest, so ``wait``
prints one line per change); one runs the real console entry in a subprocess and reads its
progress lines while the run is held, then finishes the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from secured import ALICE, AUDIENCE, auth_options

from lro_server._proto.lro.databricks.v1 import jobs_pb2
from lro_server.cli.client import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, main
from lro_server.testing.id_tokens import CertsServerThread, TokenIssuer
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread
from lro_server.testing.tls import self_signed_cert


def _run_id(operations, name: str) -> int:  # type: ignore[no-untyped-def]
    from google.protobuf import any_pb2

    def started() -> int:
        op = operations.get_operation(name)
        meta = jobs_pb2.RunMetadata()
        assert isinstance(op.metadata, any_pb2.Any)
        op.metadata.Unpack(meta)
        return int(meta.run_id)

    return wait_until(started, timeout=20, what="the run to start")


@pytest.fixture
def held(sim, jobs, create_job, operations):  # type: ignore[no-untyped-def]
    """Start a run that stays RUNNING until the test finishes it; returns (name, run id)."""
    job_id = create_job("held", tasks=2)
    sim.set_timeline("runs", "hold", job_id=job_id)
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id))
    return op.name, _run_id(operations, op.name)


def _lro(server, *args: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [*args, "--server", server.grpc_target]


def test_wait_succeeds_with_task_progress(server, jobs, create_job, capsys):
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=create_job("ok", tasks=2)))
    assert main(_lro(server, "wait", op.name, "--interval", "0.2")) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{op.name} TERMINATED/SUCCESS 100% tasks 2/2" in out
    assert "t0=TERMINATED/SUCCESS" in out and "t1=TERMINATED/SUCCESS" in out
    assert "succeeded" in out


def test_wait_shows_live_progress_then_exits_0(server, sim, held):
    """The console script, as a user runs it: progress lines arrive while the run is held."""
    name, run_id = held
    env = {**os.environ, "LRO_SERVER": server.grpc_target}
    process = subprocess.Popen(
        [sys.executable, "-m", "lro_server.cli.client", "wait", name, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith(f"{name} RUNNING"), first
        assert "tasks 0/2" in first
        sim.finish_run(run_id, "SUCCESS")
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == EXIT_OK, err
    assert "TERMINATED/SUCCESS" in out and "succeeded" in out


def test_wait_exits_1_with_the_databricks_error(server, sim, held, capsys):
    name, run_id = held
    sim.finish_run(run_id, "FAILED", state_message="division by zero in cell 3")
    assert main(_lro(server, "wait", name, "--interval", "0.2")) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "division by zero in cell 3" in captured.err
    assert "failed" in captured.err


def test_wait_times_out_with_exit_3(server, held, capsys):
    name, _ = held
    code = main(_lro(server, "wait", name, "--timeout", "0.3", "--interval", "0.1", "--json"))
    assert code == EXIT_TIMEOUT
    captured = capsys.readouterr()
    assert "not done after 0.3s" in captured.err
    body = json.loads(captured.out)
    assert body["name"] == name and "done" not in body  # proto3 JSON omits done=false
    assert body["metadata"]["lifeCycleState"] == "RUNNING"


def test_get_json_is_proto3_json(server, jobs, create_job, operations, capsys):
    op = jobs.RunNow(jobs_pb2.RunNowRequest(job_id=create_job()))
    assert main(_lro(server, "wait", op.name, "--quiet", "--interval", "0.2")) == EXIT_OK
    capsys.readouterr()
    assert main(_lro(server, "get", op.name.split("/")[1], "--json")) == EXIT_OK
    body = json.loads(capsys.readouterr().out)
    assert body["name"] == op.name and body["done"] is True
    assert body["response"]["@type"] == "type.googleapis.com/lro.databricks.v1.Run"
    assert body["metadata"]["progressPercent"] == 100


def test_list_pages_filters_and_table(server, jobs, create_job, capsys):
    job_id = create_job()
    names = {jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id)).name for _ in range(3)}
    for name in names:
        assert main(_lro(server, "wait", name, "--quiet", "--interval", "0.2")) == EXIT_OK
    capsys.readouterr()

    assert main(_lro(server, "--json", "list", "--page-size", "2")) == EXIT_OK
    page = json.loads(capsys.readouterr().out)
    assert len(page["operations"]) == 2 and page["nextPageToken"]
    assert main(_lro(server, "list", "--json", "--page-token", page["nextPageToken"])) == 0
    rest = json.loads(capsys.readouterr().out)
    assert {o["name"] for o in page["operations"] + rest["operations"]} == names

    assert main(_lro(server, "list", "--all", "--page-size", "1", "--json")) == EXIT_OK
    assert {o["name"] for o in json.loads(capsys.readouterr().out)["operations"]} == names
    assert main(_lro(server, "list", "--json", "--filter", "done = false")) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {}

    assert main(_lro(server, "list", "--page-size", "2")) == EXIT_OK
    captured = capsys.readouterr()
    header = captured.out.splitlines()[0].split()
    columns = ["name", "done", "state", "type", "created", "error"]
    assert [h for h in header if h.isalpha()] == columns
    assert "TERMINATED/SUCCESS" in captured.out and "RunMetadata" in captured.out
    assert "--page-token" in captured.err


def test_cancel_then_wait_reports_cancelled(server, held, capsys):
    name, _ = held
    assert main(_lro(server, "cancel", name)) == EXIT_OK
    assert f"cancellation requested for {name}" in capsys.readouterr().out
    assert main(_lro(server, "wait", name, "--interval", "0.2", "--timeout", "30")) == EXIT_FAILED
    assert "CANCELLED" in capsys.readouterr().err


def test_delete_then_get_is_not_found(server, held, capsys):
    name, _ = held
    assert main(_lro(server, "delete", name, "--json")) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {}
    assert main(_lro(server, "get", name)) == EXIT_FAILED
    assert "NOT_FOUND" in capsys.readouterr().err


def test_usage_errors_exit_2(server, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == EXIT_USAGE
    assert main(_lro(server, "wait", "x", "--timeout", "-1")) == EXIT_USAGE
    assert main(_lro(server, "list", "--page-size", "-5")) == EXIT_USAGE


def test_unreachable_server_exits_1(capsys, unused_tcp_port: int):
    assert main(["get", "x", "--server", f"127.0.0.1:{unused_tcp_port}"]) == EXIT_FAILED
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_token_and_tls_reach_a_secured_server(tmp_path: Path, sim, capsys, monkeypatch):
    from reliability import quick_config

    cert = self_signed_cert()
    cert_file, key_file = cert.write(tmp_path)
    issuer = TokenIssuer()
    with CertsServerThread(issuer) as certs:
        config = quick_config(
            f"sqlite:///{tmp_path}/lro.db",
            sim.url,
            auth=auth_options(certs.url),
            tls_cert_file=str(cert_file),
            tls_key_file=str(key_file),
            http_port=-1,
        )
        with ServerThread(config) as server:
            port = server.grpc_target.rsplit(":", 1)[1]
            target = ["--server", f"localhost:{port}", "--tls", "--ca-cert", str(cert_file)]
            assert main(["list", *target]) == EXIT_FAILED
            assert "UNAUTHENTICATED" in capsys.readouterr().err
            monkeypatch.setenv("LRO_TOKEN", issuer.token(email=ALICE, audience=AUDIENCE))
            assert main(["list", "--json", *target]) == EXIT_OK
            assert json.loads(capsys.readouterr().out) == {}


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_sends_bearer_metadata():
    from lro_server.cli.client_rpc import Connection, Target

    with Connection(Target("127.0.0.1:1", token="abc")) as connection:
        assert connection.metadata == (("authorization", "Bearer abc"),)
    with Connection(Target("127.0.0.1:1")) as connection:
        assert connection.metadata == ()
