"""The ``lro`` client's connection: a gRPC channel and the google.longrunning.Operations calls.

Plain generated stubs rather than google-api-core's OperationsClient: the client needs
WaitOperation (which that client does not offer) and one place for the bearer token.
The token travels as ``authorization: Bearer …`` call metadata, which also works on a
plaintext channel (a local server or a TLS-terminating proxy such as Cloud Run's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

#: Seconds added to a WaitOperation's own timeout for the RPC deadline, so the server answers
#: with the latest state (its contract) before the channel gives up.
DEADLINE_SLACK = 10.0
#: Deadline of the quick calls (get, list, cancel, delete).
CALL_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class Target:
    """Where and how to connect."""

    server: str
    token: str = ""
    tls: bool = False
    ca_cert: Path | None = None


def operation_name(text: str) -> str:
    """``operations/ID`` from a full name or a bare id."""
    text = text.strip()
    return text if text.startswith("operations/") else f"operations/{text}"


class Connection:
    """An open channel to one server; use as a context manager."""

    def __init__(self, target: Target) -> None:
        if target.tls:
            roots = target.ca_cert.read_bytes() if target.ca_cert else None
            self.channel = grpc.secure_channel(
                target.server, grpc.ssl_channel_credentials(root_certificates=roots)
            )
        else:
            self.channel = grpc.insecure_channel(target.server)
        self.stub = operations_pb2_grpc.OperationsStub(self.channel)
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {target.token}"),) if target.token else ()
        )

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.channel.close()

    def get(self, name: str) -> operations_pb2.Operation:
        """GetOperation."""
        request = operations_pb2.GetOperationRequest(name=name)
        result: operations_pb2.Operation = self.stub.GetOperation(
            request, timeout=CALL_TIMEOUT, metadata=self.metadata
        )
        return result

    def list_page(
        self, filter_text: str, page_size: int, page_token: str
    ) -> operations_pb2.ListOperationsResponse:
        """One ListOperations page."""
        request = operations_pb2.ListOperationsRequest(
            name="operations", filter=filter_text, page_size=page_size, page_token=page_token
        )
        result: operations_pb2.ListOperationsResponse = self.stub.ListOperations(
            request, timeout=CALL_TIMEOUT, metadata=self.metadata
        )
        return result

    def list_all(self, filter_text: str, page_size: int) -> Iterator[operations_pb2.Operation]:
        """Every operation matching the filter, page after page."""
        token = ""
        while True:
            page = self.list_page(filter_text, page_size, token)
            yield from page.operations
            token = page.next_page_token
            if not token:
                return

    def wait(self, name: str, timeout: float) -> operations_pb2.Operation:
        """WaitOperation for at most ``timeout`` seconds; the latest state either way."""
        request = operations_pb2.WaitOperationRequest(
            name=name, timeout=duration_pb2.Duration(seconds=int(timeout), nanos=_nanos(timeout))
        )
        result: operations_pb2.Operation = self.stub.WaitOperation(
            request, timeout=timeout + DEADLINE_SLACK, metadata=self.metadata
        )
        return result

    def cancel(self, name: str) -> None:
        """CancelOperation."""
        request = operations_pb2.CancelOperationRequest(name=name)
        self.stub.CancelOperation(request, timeout=CALL_TIMEOUT, metadata=self.metadata)

    def delete(self, name: str) -> None:
        """DeleteOperation."""
        request = operations_pb2.DeleteOperationRequest(name=name)
        self.stub.DeleteOperation(request, timeout=CALL_TIMEOUT, metadata=self.metadata)


def _nanos(seconds: float) -> int:
    return round((seconds - int(seconds)) * 1e9) % 1_000_000_000
