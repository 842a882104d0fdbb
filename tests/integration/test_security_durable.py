"""Durable methods with authentication on: Start follows the caller's identity (the method
and its children are the caller's), a promise is resolved by whoever holds its id without
any token (a notebook has no Google identity), a wrong id is NOT_FOUND, and Resume is the
waiter's alone."""

from __future__ import annotations

from pathlib import Path

import durable_methods
import grpc
import pytest
import requests
from durable_helpers import RESOLVE_PATH, metadata, resume_http
from google.api_core import operations_v1
from reliability import create_job
from secured import ALICE, BOB, secured_server

from lro_server._proto.lro.durable.v1 import methods_pb2, methods_pb2_grpc
from lro_server.durable import methods_in
from lro_server.testing.polling import wait_until

METHODS = tuple(methods_in(durable_methods))


def test_identity_owner_and_the_promise_id_as_capability(tmp_path: Path):
    with secured_server(tmp_path, durable_methods=METHODS) as secured:
        url = secured.server.http_url
        channel = grpc.insecure_channel(secured.server.grpc_target)
        stub = methods_pb2_grpc.MethodsStub(channel)
        with pytest.raises(grpc.RpcError) as anonymous:
            stub.Start(methods_pb2.StartRequest(method="test.Notebook"))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

        job = create_job(secured.sim, "publish")
        request = methods_pb2.StartRequest(method="test.Notebook")
        request.input.update({"job": job, "owner": ALICE})
        op = stub.Start(request, metadata=secured.metadata(ALICE))
        ops = operations_v1.OperationsClient(channel)
        alice = list(secured.metadata(ALICE))

        def promise_ids() -> list[str]:
            got = ops.get_operation(op.name, metadata=list(alice))
            return [
                w for w in metadata(got).waiting_on if not w.startswith("operations/") and "." in w
            ]

        promise = wait_until(promise_ids, timeout=30, what="the promise wait")[0]
        child = next(
            s.operation
            for s in metadata(ops.get_operation(op.name, metadata=list(alice))).steps
            if s.operation
        )
        # The child is Alice's: Bob cannot see it, Alice can.
        with pytest.raises(Exception, match="not found"):
            ops.get_operation(child, metadata=list(secured.metadata(BOB)))
        assert ops.get_operation(child, metadata=list(alice)).name == child

        wrong = requests.post(
            url + RESOLVE_PATH, json={"name": promise[:-2] + "00", "value": 1}, timeout=10
        )
        assert wrong.status_code == 404
        bob_resume = resume_http(url, op.name, Authorization=f"Bearer {secured.token(BOB)}")
        assert bob_resume.status_code == 403
        no_token = requests.post(
            url + RESOLVE_PATH, json={"name": promise, "value": "ok"}, timeout=10
        )
        assert no_token.status_code == 200, no_token.text
        assert no_token.json()["state"] == "RESOLVED"
        channel.close()
