"""Every INTERNAL the server answers is logged with its traceback, on both fronts."""

from __future__ import annotations

import logging
import traceback

import grpc
import pytest
import requests

from lro_server._proto.lro.databricks.v1 import jobs_pb2


class _Broken(Exception):
    """A bug of the client code (nothing the error tables know)."""


def _internal_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]


def _traceback(record: logging.LogRecord) -> str:
    assert record.exc_info is not None
    return "".join(traceback.format_exception(*record.exc_info))


@pytest.mark.parametrize("front", ["grpc", "http"])
def test_a_databricks_client_bug_is_answered_internal_and_logged(
    front, server, jobs, caplog, monkeypatch
):
    async def broken() -> None:
        raise _Broken("the SDK changed under us")

    # The connection to the workspace cannot be made for a reason no table knows: a bug.
    monkeypatch.setattr(server.application.databricks, "_connection", broken)
    caplog.set_level(logging.ERROR, logger="lro_server")
    if front == "grpc":
        with pytest.raises(grpc.RpcError) as caught:
            jobs.RunNow(jobs_pb2.RunNowRequest(job_id=1), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert caught.value.details() == "unexpected error calling Databricks"
    else:
        answer = requests.post(
            f"{server.http_url}/lro.databricks.v1.Jobs/RunNow", json={"job_id": 1}, timeout=30
        )
        assert answer.status_code == 500
        assert answer.json()["error"]["status"] == "INTERNAL"
    (record,) = _internal_records(caplog)
    assert "lro.databricks.v1.Jobs/RunNow" in record.getMessage()
    text = _traceback(record)
    assert "_Broken: the SDK changed under us" in text  # the cause, with its traceback
    assert "Traceback (most recent call last)" in text


@pytest.mark.parametrize("front", ["grpc", "http"])
def test_an_unexpected_exception_is_answered_internal_and_logged(
    front, server, jobs, caplog, monkeypatch
):
    async def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in a handler")

    monkeypatch.setattr(server.application.service, "start", broken)
    caplog.set_level(logging.ERROR, logger="lro_server")
    if front == "grpc":
        with pytest.raises(grpc.RpcError) as caught:
            jobs.RunNow(jobs_pb2.RunNowRequest(job_id=1), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert caught.value.details() == "internal error"  # nothing of the bug leaks out
    else:
        answer = requests.post(
            f"{server.http_url}/lro.databricks.v1.Jobs/RunNow", json={"job_id": 1}, timeout=30
        )
        assert answer.status_code == 500
        assert answer.json()["error"]["message"] == "internal error"
    (record,) = _internal_records(caplog)
    assert "ZeroDivisionError: a bug in a handler" in _traceback(record)
