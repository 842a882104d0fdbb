"""What a handler knows about its call, whichever front (gRPC or HTTP) it came through."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from lro_server.core.errors import InvalidArgument
from lro_server.core.principal import ANONYMOUS, Principal

#: Header naming the operation a waiter resumes (the seed design's contract).
RESUME_HEADER = "x-alis-operation-id"
#: Header carrying the id of the wait a waiter ends.
WAIT_ID_HEADER = "x-lro-wait-id"
#: Header carrying how the wait ended: done, timeout or error.
WAIT_OUTCOME_HEADER = "x-lro-wait-outcome"


@dataclasses.dataclass(slots=True)
class CallContext:
    """One call (not frozen: a frozen dataclass costs three times as much to build, and one
    is built per RPC; nothing changes it after).

    Attributes:
        principal: The authenticated caller.
        metadata: Request metadata / headers, keys lower-case.
        remaining: Returns the seconds until the caller's deadline, or None without one
            (asked only by the methods that need it: most calls never do).
        operation_name: The name the started operation must get; set only by the server
            itself (a durable method's child), never from request metadata.
    """

    principal: Principal = ANONYMOUS
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    remaining: Callable[[], float | None] = lambda: None
    operation_name: str = ""

    @property
    def time_remaining(self) -> float | None:
        """Seconds until the caller's deadline, or None without one."""
        return self.remaining()

    @property
    def resume_id(self) -> str:
        """The ``x-alis-operation-id`` header, or "" on a first call."""
        return self.metadata.get(RESUME_HEADER, "")

    @property
    def wait_id(self) -> int | None:
        """The ``x-lro-wait-id`` header as an int (None when absent)."""
        text = self.metadata.get(WAIT_ID_HEADER, "")
        if not text.strip():
            return None
        try:
            return int(text)
        except ValueError:
            raise InvalidArgument(
                f"{WAIT_ID_HEADER} must be an integer, got {text[:40]!r}",
                metadata={"field": WAIT_ID_HEADER},
            ) from None

    @property
    def wait_outcome(self) -> str:
        """The ``x-lro-wait-outcome`` header ("" when absent)."""
        return self.metadata.get(WAIT_OUTCOME_HEADER, "")
