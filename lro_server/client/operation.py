"""The operation future of the synchronous client: google-api-core's, waiting with WaitOperation.

:class:`Operation` is a ``google.api_core.operation.Operation`` (``result(timeout)``,
``done()``, ``cancel()``, ``cancelled()``, ``metadata``, ``add_done_callback``, and the
google-api-core exceptions it raises), except in how it waits: instead of polling
GetOperation with backoff, it holds a WaitOperation call, which the server answers the
moment the operation is done (or at the call's timeout, with the latest state, when it
simply asks again). No polling loop, no added latency.
"""

from __future__ import annotations

import concurrent.futures
import functools
import time
from typing import Any, Protocol

from google.api_core import exceptions
from google.api_core import operation as api_operation
from google.longrunning import operations_pb2
from google.protobuf.message import Message

#: Longest single WaitOperation call; the server may answer earlier with the latest state.
WAIT_CHUNK_SECONDS = 60.0
#: Longest pause after a transient failure (the server restarts, a proxy drops the call).
MAX_BACKOFF_SECONDS = 5.0
#: Failures after which waiting goes on.
TRANSIENT = (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded)


class OperationCalls(Protocol):
    """The google.longrunning.Operations calls a future needs (the client's)."""

    def get(self, name: str, retry: Any = None) -> operations_pb2.Operation:
        """GetOperation."""
        ...

    def cancel(self, name: str) -> None:
        """CancelOperation."""
        ...

    def wait(self, name: str, timeout: float) -> operations_pb2.Operation:
        """WaitOperation for at most ``timeout`` seconds."""
        ...


class Operation(api_operation.Operation):
    """A long-running operation of lro-server, as a google-api-core future.

    Args:
        operation: The operation as started (or read).
        calls: The client's Operations calls.
        result_type: Message class of the response.
        metadata_type: Message class of the metadata.
    """

    def __init__(
        self,
        operation: operations_pb2.Operation,
        calls: OperationCalls,
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

    def _blocking_poll(self, timeout: Any = None, retry: Any = None, polling: Any = None) -> None:
        """Wait with WaitOperation until done, or raise TimeoutError after ``timeout`` s."""
        del retry  # the calls are made by the client; polling has no meaning here
        if self._result_set:
            return
        if timeout is api_operation.Operation._DEFAULT_VALUE:
            timeout = (polling or self._polling).timeout
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        backoff = 0.5
        while not self._result_set:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise concurrent.futures.TimeoutError(
                    f"Operation {self.name} did not complete within {timeout} seconds."
                )
            try:
                self._operation = self._wait(
                    WAIT_CHUNK_SECONDS if left is None else min(WAIT_CHUNK_SECONDS, left)
                )
            except TRANSIENT:
                time.sleep(backoff if left is None else min(backoff, left))
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.5
            self._set_result_from_operation()  # type: ignore[no-untyped-call]
