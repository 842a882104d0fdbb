"""Authentication over gRPC and HTTP: no token or a bad one → UNAUTHENTICATED (HTTP 401)
with nothing about why; a valid Google-style ID token works; TLS on the gRPC port."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from google.longrunning import operations_pb2, operations_pb2_grpc
from lro_steps import error_info, grpc_status
from reliability import create_job, quick_config
from secured import ALICE, AUDIENCE, BOB, Secured, auth_options, channel_to, secured_server

from lro_server._proto.lro.databricks.v1 import jobs_pb2, jobs_pb2_grpc
from lro_server.testing.id_tokens import CertsServerThread, TokenIssuer
from lro_server.testing.server_thread import ServerThread
from lro_server.testing.tls import self_signed_cert

pytestmark = pytest.mark.xdist_group("security_auth")

UNKNOWN = f"operations/{uuid.uuid4()}"
#: Words that would tell a caller why its token was refused.
TELLTALES = ("audience", "expired", "signature", "issuer", "certificate", "token used too")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """One authenticated server for the module."""
    with secured_server(tmp_path_factory.mktemp("auth")) as running:
        yield running


@pytest.fixture(scope="module")
def ops(secured: Secured) -> Iterator[operations_pb2_grpc.OperationsStub]:
    """Raw Operations stub (no credentials of its own)."""
    with channel_to(secured) as channel:
        yield operations_pb2_grpc.OperationsStub(channel)


def _bad_tokens(secured: Secured) -> dict[str, str]:
    """Authorization header values that must all be refused, by what is wrong with them."""
    good = secured.token(ALICE)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["email"] = "mallory@example.com"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    stranger = TokenIssuer(key_id=secured.issuer.key_id)  # same key id, other key
    return {
        "garbage": "Bearer not-a-jwt",
        "three dots": "Bearer a.b.c",
        "empty bearer": "Bearer ",
        "basic scheme": "Basic " + base64.b64encode(b"alice:pw").decode(),
        "no scheme": good,
        "wrong audience": "Bearer " + secured.issuer.token(email=ALICE, audience="https://other"),
        "expired": "Bearer " + secured.token(ALICE, iat=1_600_000_000, exp=1_600_003_600),
        "foreign key": "Bearer " + stranger.token(email=ALICE, audience=AUDIENCE),
        "wrong issuer": "Bearer " + secured.token(ALICE, iss="https://evil.example"),
        "tampered payload": f"Bearer {header}.{forged}.{signature}",
        "unknown key id": "Bearer "
        + TokenIssuer(key_id="nope").token(email=ALICE, audience=AUDIENCE),
    }


def _no_leak(message: str, value: str) -> None:
    assert message in ("missing bearer token", "invalid credentials"), message
    assert not any(word in message.lower() for word in TELLTALES)
    token = value.partition(" ")[2] or value
    assert token.strip() == "" or token.strip() not in message


def test_grpc_refuses_missing_and_bad_tokens(secured, ops, figures):
    calls = [
        (ops.GetOperation, operations_pb2.GetOperationRequest(name=UNKNOWN)),
        (ops.ListOperations, operations_pb2.ListOperationsRequest(name="operations")),
        (ops.WaitOperation, operations_pb2.WaitOperationRequest(name=UNKNOWN)),
        (ops.CancelOperation, operations_pb2.CancelOperationRequest(name=UNKNOWN)),
        (ops.DeleteOperation, operations_pb2.DeleteOperationRequest(name=UNKNOWN)),
    ]
    refused = 0
    for call, request in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert caught.value.details() == "missing bearer token"
        assert error_info(grpc_status(caught.value)).reason == "MISSING_CREDENTIALS"
        refused += 1
        for kind, value in _bad_tokens(secured).items():
            with pytest.raises(grpc.RpcError) as caught:
                call(request, metadata=(("authorization", value),), timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, kind
            _no_leak(caught.value.details(), value)
            status = grpc_status(caught.value)
            assert error_info(status).metadata == {}, kind
            refused += 1
    figures(bad_credentials_refused=refused, leaked=0)


def test_grpc_valid_token_works(secured, ops):
    listed = ops.ListOperations(
        operations_pb2.ListOperationsRequest(name="operations"),
        metadata=secured.metadata(ALICE),
        timeout=10,
    )
    assert list(listed.operations) == []
    with pytest.raises(grpc.RpcError) as caught:
        ops.GetOperation(
            operations_pb2.GetOperationRequest(name=UNKNOWN),
            metadata=secured.metadata(ALICE),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_start_method_needs_a_token_and_records_the_owner(secured):
    job_id = create_job(secured.sim, "auth-owner")
    with channel_to(secured) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        ops = operations_pb2_grpc.OperationsStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            jobs.RunNow(jobs_pb2.RunNowRequest(job_id=job_id), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert secured.sim.created("runs", job_id=job_id) == []
        op = jobs.RunNow(
            jobs_pb2.RunNowRequest(job_id=job_id), metadata=secured.metadata(BOB), timeout=10
        )
        seen = ops.GetOperation(
            operations_pb2.GetOperationRequest(name=op.name),
            metadata=secured.metadata(BOB),
            timeout=10,
        )
        assert seen.name == op.name
    record = secured.server.run(secured.server.application.store.get(op.name))
    assert record.owner == BOB


def test_http_refuses_missing_and_bad_tokens(secured, figures):
    base = secured.server.http_url
    routes = [
        ("GET", f"/v1/{UNKNOWN}", None),
        ("GET", "/v1/operations", None),
        ("POST", f"/v1/{UNKNOWN}:cancel", None),
        ("POST", f"/v1/{UNKNOWN}:wait", {}),
        ("DELETE", f"/v1/{UNKNOWN}", None),
        ("POST", "/google.longrunning.Operations/GetOperation", {"name": UNKNOWN}),
        ("POST", "/lro.databricks.v1.Jobs/RunNow", {"jobId": "1"}),
        ("POST", "/lro.databricks.v1.Chains/RunChain", {"data": {}}),
    ]
    refused = 0
    cases = {"none": None, **_bad_tokens(secured)}
    for method, path, body in routes:
        for kind, value in cases.items():
            headers = {} if value is None else {"Authorization": value}
            response = requests.request(method, base + path, json=body, headers=headers, timeout=10)
            assert response.status_code == 401, (kind, path, response.text)
            error = response.json()["error"]
            assert error["status"] == "UNAUTHENTICATED"
            _no_leak(error["message"], value or "")
            refused += 1
    figures(bad_credentials_refused=refused, leaked=0)


def test_http_valid_token_works(secured):
    base = secured.server.http_url
    response = requests.get(base + "/v1/operations", headers=secured.headers(ALICE), timeout=10)
    assert response.status_code == 200, response.text
    response = requests.get(base + f"/v1/{UNKNOWN}", headers=secured.headers(ALICE), timeout=10)
    assert response.status_code == 404


def test_certificates_are_fetched_once_and_tokens_cached(secured):
    before = secured.certs.fetches
    for _ in range(5):
        response = requests.get(
            secured.server.http_url + "/v1/operations", headers=secured.headers(ALICE), timeout=10
        )
        assert response.status_code == 200
    assert secured.certs.fetches == before <= 1


def test_allowed_principals_limit_callers(tmp_path):
    with secured_server(tmp_path, auth_overrides={"allowed": frozenset({ALICE})}) as secured:
        with channel_to(secured) as channel:
            ops = operations_pb2_grpc.OperationsStub(channel)
            request = operations_pb2.ListOperationsRequest(name="operations")
            ops.ListOperations(request, metadata=secured.metadata(ALICE), timeout=10)
            with pytest.raises(grpc.RpcError) as caught:
                ops.ListOperations(request, metadata=secured.metadata(BOB), timeout=10)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        response = requests.get(
            secured.server.http_url + "/v1/operations", headers=secured.headers(BOB), timeout=10
        )
        assert response.status_code == 403


def test_tls_on_the_grpc_port(tmp_path: Path, sim):
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
            token = issuer.token(email=ALICE, audience=AUDIENCE)
            credentials = grpc.ssl_channel_credentials(root_certificates=cert.cert_pem)
            with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
                ops = operations_pb2_grpc.OperationsStub(channel)
                listed = ops.ListOperations(
                    operations_pb2.ListOperationsRequest(name="operations"),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=10,
                )
                assert list(listed.operations) == []
            with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
                ops = operations_pb2_grpc.OperationsStub(plain)
                with pytest.raises(grpc.RpcError) as caught:
                    ops.ListOperations(
                        operations_pb2.ListOperationsRequest(name="operations"), timeout=5
                    )
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
