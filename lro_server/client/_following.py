"""What both operation futures share: the client's calls bound to the operation's name,
and the schedule of the WaitOperation calls they wait with."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from google.api_core import exceptions
from google.longrunning import operations_pb2
from google.protobuf.message import Message

#: Longest single WaitOperation call; the server may answer earlier with the latest state.
WAIT_CHUNK_SECONDS = 60.0
#: Longest pause after a transient failure (the server restarts, a proxy drops the call).
MAX_BACKOFF_SECONDS = 5.0
#: Failures after which waiting goes on.
TRANSIENT = (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded)
#: The pause after a first transient failure, doubled at each further one.
_FIRST_BACKOFF_SECONDS = 0.5


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


Calls = TypeVar("Calls", OperationCalls, AsyncOperationCalls)


class Following(Generic[Calls]):
    """Base of both futures, before google-api-core's in their bases: hands it ``refresh``
    and ``cancel`` bound to the operation's name, and keeps ``_wait`` bound the same way.

    Args:
        operation: The operation as started (or read).
        calls: The client's Operations calls.
        result_type: Message class of the response.
        metadata_type: Message class of the metadata.
    """

    _operation: operations_pb2.Operation

    def __init__(
        self,
        operation: operations_pb2.Operation,
        calls: Calls,
        result_type: type[Message],
        metadata_type: type[Message],
    ) -> None:
        super().__init__(  # type: ignore[call-arg]  # google-api-core's future, next in line
            operation,
            refresh=functools.partial(calls.get, operation.name),
            cancel=functools.partial(calls.cancel, operation.name),
            result_type=result_type,
            metadata_type=metadata_type,
        )
        #: WaitOperation of this operation: an Operation, or an awaitable of one.
        self._wait: Callable[[float], Any] = functools.partial(calls.wait, operation.name)

    @property
    def name(self) -> str:
        """``operations/{id}``."""
        name: str = self._operation.name
        return name


class WaitSchedule:
    """How long each WaitOperation of one wait may last, and how long to pause after a
    transient failure (doubling up to ``MAX_BACKOFF_SECONDS``, never past the deadline).

    Args:
        name: The operation waited for (for the timeout's message).
        timeout: Seconds the whole wait may last; None: no limit.
    """

    def __init__(self, name: str, timeout: float | None) -> None:
        self._name = name
        self._timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + float(timeout)
        self._left: float | None = None
        self._backoff = _FIRST_BACKOFF_SECONDS

    def next_wait(self) -> float:
        """Seconds the next WaitOperation may last.

        Raises:
            TimeoutError: The wait's timeout has passed.
        """
        self._left = None if self._deadline is None else self._deadline - time.monotonic()
        if self._left is not None and self._left <= 0:
            raise TimeoutError(
                f"Operation {self._name} did not complete within {self._timeout} seconds."
            )
        return WAIT_CHUNK_SECONDS if self._left is None else min(WAIT_CHUNK_SECONDS, self._left)

    def pause(self) -> float:
        """Seconds to pause after the last WaitOperation failed transiently."""
        left = self._left
        pause = self._backoff if left is None else min(self._backoff, left)
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)
        return pause

    def answered(self) -> None:
        """The last WaitOperation answered: the next failure pauses briefly again."""
        self._backoff = _FIRST_BACKOFF_SECONDS
