"""The operation future of the asyncio client: google-api-core's AsyncOperation, waiting
with WaitOperation (see :mod:`lro_server.client.operation` for why)."""

from __future__ import annotations

import asyncio

from google.api_core import exceptions, operation_async, protobuf_helpers

from lro_server.client._following import (
    TRANSIENT,
    AsyncOperationCalls,
    Following,
    WaitSchedule,
)

__all__ = ["AsyncOperation", "AsyncOperationCalls"]


class AsyncOperation(Following[AsyncOperationCalls], operation_async.AsyncOperation):
    """A long-running operation of lro-server, as a google-api-core async future.

    ``await op.result(timeout)``, ``await op.done()``, ``await op.cancel()``, ``op.metadata``.

    Args:
        operation: The operation as started (or read).
        calls: The async client's Operations calls.
        result_type: Message class of the response.
        metadata_type: Message class of the metadata.
    """

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
        schedule = WaitSchedule(self.name, timeout)
        while not self._future.done():
            seconds = schedule.next_wait()
            try:
                self._operation = await self._wait(seconds)
            except TRANSIENT:
                await asyncio.sleep(schedule.pause())
                continue
            schedule.answered()
            self._set_result_from_operation()
