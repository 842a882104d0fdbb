"""WaitOperation: latest state at min(timeout, deadline), never DEADLINE_EXCEEDED, wakes at once."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
import requests
from google.longrunning import operations_pb2, operations_pb2_grpc
from lro_steps import start_held, wait_done, wait_run_id

from lro_server.testing.polling import wait_until


def _wait_request(name: str, seconds: float | None) -> operations_pb2.WaitOperationRequest:
    request = operations_pb2.WaitOperationRequest(name=name)
    if seconds is not None:
        request.timeout.FromNanoseconds(int(seconds * 1e9))
    return request


@pytest.fixture
def stub(channel: grpc.Channel) -> operations_pb2_grpc.OperationsStub:
    return operations_pb2_grpc.OperationsStub(channel)


@pytest.fixture
def held(sim, jobs, operations, create_job):
    """A running operation and its run id."""
    op = start_held(jobs, sim, create_job())
    return op.name, wait_run_id(operations, op.name)


def test_rpc_deadline_shorter_than_timeout_returns_running_operation(stub, held):
    name, _ = held
    began = time.monotonic()
    op = stub.WaitOperation(_wait_request(name, 10), timeout=0.5)
    took = time.monotonic() - began
    assert not op.done and op.name == name
    assert 0.3 <= took < 1.5, took


def test_request_timeout_shorter_than_deadline_returns_running_operation(stub, held):
    name, _ = held
    began = time.monotonic()
    op = stub.WaitOperation(_wait_request(name, 0.3), timeout=10)
    took = time.monotonic() - began
    assert not op.done
    assert 0.25 <= took < 1.5, took


def test_zero_timeout_returns_at_once(stub, held):
    name, _ = held
    began = time.monotonic()
    assert not stub.WaitOperation(_wait_request(name, 0), timeout=10).done
    assert time.monotonic() - began < 1.0


def test_wait_answers_as_soon_as_the_operation_completes(sim, server, stub, held):
    name, run_id = held
    result: dict[str, object] = {}
    finished = threading.Event()

    def wait() -> None:
        try:
            result["op"] = stub.WaitOperation(_wait_request(name, 30), timeout=40)
        except grpc.RpcError as error:  # reported by the assertions below
            result["error"] = error
        result["at"] = time.monotonic()
        finished.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    notifier = server.application.notifier
    wait_until(lambda: notifier.waiters >= 1, timeout=5, what="the WaitOperation call to wait")
    assert not finished.is_set()
    sim.finish_run(run_id, "SUCCESS")
    completed = time.monotonic()
    assert finished.wait(10), "WaitOperation did not answer after the run finished"
    assert "error" not in result, result
    op = result["op"]
    assert isinstance(op, operations_pb2.Operation)
    assert op.done and op.HasField("response")
    assert float(result["at"]) - completed < 3.0  # type: ignore[arg-type]


def test_done_operation_returns_at_once(sim, operations, stub, held):
    name, run_id = held
    sim.finish_run(run_id, "SUCCESS")
    wait_done(operations, name)
    began = time.monotonic()
    op = stub.WaitOperation(_wait_request(name, 30), timeout=40)
    assert op.done and time.monotonic() - began < 1.0


def test_many_waiters_of_one_operation_all_wake(sim, stub, server, held):
    name, run_id = held
    futures = [stub.WaitOperation.future(_wait_request(name, 30), timeout=40) for _ in range(20)]
    notifier = server.application.notifier
    wait_until(lambda: notifier.waiters >= 20, timeout=5, what="20 waiters")
    sim.finish_run(run_id, "FAILED", state_message="boom")
    ops = [f.result(timeout=10) for f in futures]
    assert all(op.done and op.error.message.endswith("boom") for op in ops)


def test_http_wait(sim, server, operations, held):
    name, run_id = held
    url = f"{server.http_url}/v1/{name}:wait"
    began = time.monotonic()
    body = requests.post(url, json={"timeout": "0.3s"}, timeout=10).json()
    assert body["name"] == name and "done" not in body
    assert 0.25 <= time.monotonic() - began < 1.5

    result: dict[str, object] = {}
    finished = threading.Event()

    def wait() -> None:
        result["body"] = requests.post(url, json={"timeout": "30s"}, timeout=40).json()
        finished.set()

    threading.Thread(target=wait, daemon=True).start()
    notifier = server.application.notifier
    wait_until(lambda: notifier.waiters >= 1, timeout=5, what="the :wait call to wait")
    sim.finish_run(run_id, "SUCCESS")
    assert finished.wait(5)
    done = result["body"]
    assert isinstance(done, dict) and done["done"] is True and "response" in done

    # Done: answers at once, with or without a body.
    began = time.monotonic()
    assert requests.post(url, timeout=10).json()["done"] is True
    assert time.monotonic() - began < 1.0
