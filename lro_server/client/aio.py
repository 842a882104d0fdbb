"""``AsyncClient``: the asyncio Python client of lro-server.

::

    from lro_server.client import AsyncClient

    async with AsyncClient("localhost:50051") as client:
        op = await client.jobs.run_now(job_id=1)
        run = await op.result(timeout=3600)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
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
from lro_server.client.operation_async import AsyncOperation


class AsyncOperations:
    """``google.longrunning.Operations`` of the server, awaited: the raw operations."""

    def __init__(self, channel: Any, metadata: tuple[tuple[str, str], ...], timeout: float):
        self._channel = channel
        self._metadata = metadata
        self._timeout = timeout

    async def call(
        self, path_: str, request: Message, response: type[Message], timeout: float | None = None
    ) -> Any:
        """One unary call; grpc errors become google-api-core exceptions."""
        method = _calls.multicallable(self._channel, path_, request, response)
        try:
            return await method(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _calls.api_error(exc) from exc

    async def _send(self, call: _calls.Call) -> Any:
        return await self.call(call.path, call.request, call.response, call.timeout)

    async def get(self, name: str, retry: Any = None) -> operations_pb2.Operation:
        """GetOperation (``retry``: an optional google.api_core AsyncRetry)."""

        async def get() -> operations_pb2.Operation:
            found: operations_pb2.Operation = await self._send(_calls.get_operation(name))
            return found

        if retry is not None:
            retried: operations_pb2.Operation = await retry(get)()
            return retried
        return await get()

    async def list(
        self, filter: str = "", *, page_size: int = 0
    ) -> AsyncIterator[operations_pb2.Operation]:
        """ListOperations with an AIP-160 ``filter``, following every page."""
        token = ""
        while True:
            page = await self._send(_calls.list_operations(filter, page_size, token))
            for operation in page.operations:
                yield operation
            token = page.next_page_token
            if not token:
                return

    async def cancel(self, name: str) -> None:
        """CancelOperation: the work is asked to stop; the operation ends CANCELLED."""
        await self._send(_calls.cancel_operation(name))

    async def delete(self, name: str) -> None:
        """DeleteOperation: the server forgets the operation; the work goes on."""
        await self._send(_calls.delete_operation(name))

    async def wait(self, name: str, timeout: float = 60.0) -> operations_pb2.Operation:
        """WaitOperation: the operation once done, or its latest state after ``timeout`` s."""
        found: operations_pb2.Operation = await self._send(_calls.wait_operation(name, timeout))
        return found


class AsyncClient(Services[Awaitable[AsyncOperation]]):
    """A grpc.aio connection to one lro-server; arguments as for :class:`Client`.

    Start methods return awaitables of :class:`AsyncOperation` futures.
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
        self._channel = channel_for(target, tls, credentials, aio=True)
        self.operations = AsyncOperations(self._channel, bearer(token), call_timeout)
        super().__init__(self._start)

    async def _start(self, method: MethodDescriptor, request: Message) -> AsyncOperation:
        started = await self.operations.call(path(method), request, operations_pb2.Operation)
        return AsyncOperation(started, self.operations, *operation_types(method))

    async def operation(self, name: str) -> AsyncOperation:
        """The future of an operation started earlier, read by its name (see Client)."""
        found = await self.operations.get(name)
        return AsyncOperation(found, self.operations, *types_of_operation(name, found))

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
