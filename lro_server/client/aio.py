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
from google.api_core import exceptions
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from lro_server.client._requests import operation_types, path, types_of_metadata
from lro_server.client._transport import (
    OPERATIONS,
    WAIT_SLACK_SECONDS,
    bearer,
    channel_for,
    duration,
)
from lro_server.client.families import (
    Chains,
    Clusters,
    Commands,
    Jobs,
    Libraries,
    Pipelines,
    Warehouses,
)
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
        method = self._channel.unary_unary(
            path_,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response.FromString,
        )
        try:
            return await method(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise exceptions.from_grpc_error(exc) from exc  # type: ignore[no-untyped-call]

    async def get(self, name: str, retry: Any = None) -> operations_pb2.Operation:
        """GetOperation (``retry``: an optional google.api_core AsyncRetry)."""
        request = operations_pb2.GetOperationRequest(name=name)

        async def get() -> operations_pb2.Operation:
            found: operations_pb2.Operation = await self.call(
                OPERATIONS + "GetOperation", request, operations_pb2.Operation
            )
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
            request = operations_pb2.ListOperationsRequest(
                name="operations", filter=filter, page_size=page_size, page_token=token
            )
            page = await self.call(
                OPERATIONS + "ListOperations", request, operations_pb2.ListOperationsResponse
            )
            for operation in page.operations:
                yield operation
            token = page.next_page_token
            if not token:
                return

    async def cancel(self, name: str) -> None:
        """CancelOperation: the work is asked to stop; the operation ends CANCELLED."""
        request = operations_pb2.CancelOperationRequest(name=name)
        await self.call(OPERATIONS + "CancelOperation", request, empty_pb2.Empty)

    async def delete(self, name: str) -> None:
        """DeleteOperation: the server forgets the operation; the work goes on."""
        request = operations_pb2.DeleteOperationRequest(name=name)
        await self.call(OPERATIONS + "DeleteOperation", request, empty_pb2.Empty)

    async def wait(self, name: str, timeout: float = 60.0) -> operations_pb2.Operation:
        """WaitOperation: the operation once done, or its latest state after ``timeout`` s."""
        request = operations_pb2.WaitOperationRequest(name=name, timeout=duration(timeout))
        found: operations_pb2.Operation = await self.call(
            OPERATIONS + "WaitOperation",
            request,
            operations_pb2.Operation,
            timeout=timeout + WAIT_SLACK_SECONDS,
        )
        return found


class AsyncClient:
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
        self.jobs: Jobs[Awaitable[AsyncOperation]] = Jobs(self._start)
        self.clusters: Clusters[Awaitable[AsyncOperation]] = Clusters(self._start)
        self.commands: Commands[Awaitable[AsyncOperation]] = Commands(self._start)
        self.libraries: Libraries[Awaitable[AsyncOperation]] = Libraries(self._start)
        self.pipelines: Pipelines[Awaitable[AsyncOperation]] = Pipelines(self._start)
        self.warehouses: Warehouses[Awaitable[AsyncOperation]] = Warehouses(self._start)
        self.chains: Chains[Awaitable[AsyncOperation]] = Chains(self._start)

    async def _start(self, method: MethodDescriptor, request: Message) -> AsyncOperation:
        started = await self.operations.call(path(method), request, operations_pb2.Operation)
        response, metadata = operation_types(method)
        return AsyncOperation(started, self.operations, response, metadata)

    async def operation(self, name: str) -> AsyncOperation:
        """The future of an operation started earlier, read by its name (see Client)."""
        found = await self.operations.get(name)
        types = types_of_metadata(found.metadata.type_url)
        if types is None:
            raise ValueError(f"{name} has metadata of unknown type {found.metadata.type_url!r}")
        return AsyncOperation(found, self.operations, *types)

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
