"""``Client``: the synchronous Python client of lro-server.

::

    from lro_server.client import Client

    with Client("localhost:50051") as client:
        op = client.jobs.run_now(job_id=1, request_id="nightly-2026-12-01")
        run = op.result(timeout=3600)   # raises google.api_core.exceptions.* on failure
        print(run.run_page_url, run.result_state)
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from lro_server.client import _calls
from lro_server.client._requests import operation_types, path, types_of_operation
from lro_server.client._transport import bearer, channel_for
from lro_server.client.families import Services
from lro_server.client.operation import Operation


class Operations:
    """``google.longrunning.Operations`` of the server: the raw operations, no futures."""

    def __init__(self, channel: Any, metadata: tuple[tuple[str, str], ...], timeout: float):
        self._channel = channel
        self._metadata = metadata
        self._timeout = timeout

    def call(
        self, path_: str, request: Message, response: type[Message], timeout: float | None = None
    ) -> Any:
        """One unary call; grpc errors become google-api-core exceptions."""
        method = _calls.multicallable(self._channel, path_, request, response)
        try:
            return method(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _calls.api_error(exc) from exc

    def _send(self, call: _calls.Call) -> Any:
        return self.call(call.path, call.request, call.response, call.timeout)

    def get(self, name: str, retry: Any = None) -> operations_pb2.Operation:
        """GetOperation (``retry``: an optional google.api_core Retry)."""

        def get() -> operations_pb2.Operation:
            found: operations_pb2.Operation = self._send(_calls.get_operation(name))
            return found

        return retry(get)() if retry is not None else get()

    def list(self, filter: str = "", *, page_size: int = 0) -> Iterator[operations_pb2.Operation]:
        """ListOperations with an AIP-160 ``filter``, following every page."""
        token = ""
        while True:
            page = self._send(_calls.list_operations(filter, page_size, token))
            yield from page.operations
            token = page.next_page_token
            if not token:
                return

    def cancel(self, name: str) -> None:
        """CancelOperation: the work is asked to stop; the operation ends CANCELLED."""
        self._send(_calls.cancel_operation(name))

    def delete(self, name: str) -> None:
        """DeleteOperation: the server forgets the operation; the work goes on."""
        self._send(_calls.delete_operation(name))

    def wait(self, name: str, timeout: float = 60.0) -> operations_pb2.Operation:
        """WaitOperation: the operation once done, or its latest state after ``timeout`` s."""
        found: operations_pb2.Operation = self._send(_calls.wait_operation(name, timeout))
        return found


class Client(Services[Operation]):
    """A connection to one lro-server, with a member per service.

    Args:
        target: ``host:port`` of the gRPC front.
        token: Bearer token sent with every call (e.g. a Google ID token).
        tls: Connect with TLS (system root certificates).
        credentials: Channel credentials for TLS (other roots, client certificates).
        call_timeout: Deadline of every call but WaitOperation, in seconds.

    Attributes:
        jobs, clusters, commands, libraries, pipelines, warehouses, chains: Start methods,
            each returning an :class:`Operation` future.
        operations: get, list, cancel, delete and wait on operations.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        call_timeout: float = 30.0,
    ) -> None:
        self._channel = channel_for(target, tls, credentials)
        self.operations = Operations(self._channel, bearer(token), call_timeout)
        super().__init__(self._start)

    def _start(self, method: MethodDescriptor, request: Message) -> Operation:
        started = self.operations.call(path(method), request, operations_pb2.Operation)
        return Operation(started, self.operations, *operation_types(method))

    def operation(self, name: str) -> Operation:
        """The future of an operation started earlier (by anyone), read by its name.

        Raises:
            google.api_core.exceptions.NotFound: No such operation.
            ValueError: Its metadata is of a type this client does not know.
        """
        found = self.operations.get(name)
        return Operation(found, self.operations, *types_of_operation(name, found))

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
