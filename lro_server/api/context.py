"""What a handler knows about its call, whichever front (gRPC or HTTP) it came through."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from lro_server.core.principal import ANONYMOUS, Principal

#: Header naming the operation a waiter resumes (the seed design's contract).
RESUME_HEADER = "x-alis-operation-id"


@dataclasses.dataclass(slots=True)
class CallContext:
    """One call (not frozen: a frozen dataclass costs three times as much to build, and one
    is built per RPC; nothing changes it after).

    Attributes:
        principal: The authenticated caller.
        metadata: Request metadata / headers, keys lower-case.
        remaining: Returns the seconds until the caller's deadline, or None without one
            (asked only by the methods that need it: most calls never do).
    """

    principal: Principal = ANONYMOUS
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    remaining: Callable[[], float | None] = lambda: None

    @property
    def time_remaining(self) -> float | None:
        """Seconds until the caller's deadline, or None without one."""
        return self.remaining()

    @property
    def resume_id(self) -> str:
        """The ``x-alis-operation-id`` header, or "" on a first call."""
        return self.metadata.get(RESUME_HEADER, "")
