"""The operation future of the asyncio client: google-api-core's AsyncOperation, waiting
with WaitOperation (see :mod:`lro_server.client.operation` for why)."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Protocol

from google.api_core import exceptions, operation_async, protobuf_helpers
from google.longrunning import operations_pb2
from google.protobuf.message import Message

from lro_server.client.operation import MAX_BACKOFF_SECONDS, TRANSIENT, WAIT_CHUNK_SECONDS


class AsyncOperationCalls(Protocol):
    """The google.longrunning.Operations calls an async future needs (the client's)."""

    async def get(self, name: str, retry: Any = None) -> operations_pb2.Operation:
        """GetOperation."""
        ...

    async def cancel(self, name: str) -> None:
        """CancelOperation."""
        ...

    async def wait(self, name: str, timeout: float) -> operations_pb2.Operation:
        """WaitOperation for at most ``timeout`` seconds."""
        ...


class AsyncOperation(operation_async.AsyncOperation):
    """A long-running operation of lro-server, as a google-api-core async future.

    ``await op.result(timeout)``, ``await op.done()``, ``await op.cancel()``, ``op.metadata``.

    Args:
        operation: The operation as started (or read).
        calls: The async client's Operations calls.
        result_type: Message class of the response.
        metadata_type: Message class of the metadata.
    """

    def __init__(
        self,
        operation: operations_pb2.Operation,
        calls: AsyncOperationCalls,
        result_type: type[Message],
        metadata_type: type[Message],
    ) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            operation,
            refresh=functools.partial(calls.get, operation.name),
            cancel=functools.partial(calls.cancel, operation.name),
            result_type=result_type,
            metadata_type=metadata_type,
        )
        self._wait = functools.partial(calls.wait, operation.name)

    @property
    def name(self) -> str:
        """``operations/{id}``."""
        name: str = self._operation.name
        return name

    def _set_result_from_operation(self) -> None:
        """Settle the future from a done operation: its response, or the google-api-core
        exception of its error's code (``Cancelled``, ``NotFound``..., as the sync future
        raises; google-api-core's own async future raises a bare GoogleAPICallError)."""
        with self._completion_lock:
            operation = self._operation
            if not operation.done or self._future.done():
                return
            if operation.HasField("response"):
                response = protobuf_helpers.from_any_pb(  # type: ignore[no-untyped-call]
                    self._result_type, operation.response
                )
                self.set_result(response)  # type: ignore[no-untyped-call]
            elif operation.HasField("error"):
                self.set_exception(
                    exceptions.from_grpc_status(  # type: ignore[no-untyped-call]
                        status_code=operation.error.code,
                        message=operation.error.message,
                        errors=(operation.error,),
                        response=operation,
                    )
                )
            else:
                self.set_exception(
                    exceptions.GoogleAPICallError(  # type: ignore[no-untyped-call]
                        f"{operation.name} is done with neither a response nor an error"
                    )
                )

    async def _blocking_poll(self, timeout: float | None = None) -> None:
        """Wait with WaitOperation until done, or raise TimeoutError after ``timeout`` s."""
        if self._future.done():
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = 0.5
        while not self._future.done():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(
                    f"Operation {self.name} did not complete within {timeout} seconds."
                )
            try:
                self._operation = await self._wait(
                    WAIT_CHUNK_SECONDS if left is None else min(WAIT_CHUNK_SECONDS, left)
                )
            except TRANSIENT:
                await asyncio.sleep(backoff if left is None else min(backoff, left))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.5
            self._set_result_from_operation()
