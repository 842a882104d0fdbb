"""The waiter port: who watches child operations and resumes the parent when they are done.

Two implementations, chosen by settings: :mod:`lro_server.resume.embedded` (in the server,
the default) and :mod:`lro_server.resume.workflows` (a Cloud Workflows execution of
``workflows/operation_waiter.yaml``). Either resumes through
:meth:`lro_server.resume.engine.Resumer.resume`, the code path of an external resume call.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from lro_server.core.errors import Internal
from lro_server.core.record import OperationRecord
from lro_server.resume.checkpoint import Checkpoint


@dataclasses.dataclass(frozen=True, slots=True)
class WaitTicket:
    """One wait handed to a waiter.

    Attributes:
        parent: The waiting operation's name.
        method: Full name of the method to call again, e.g. ``lro.databricks.v1.Chains/RunChain``.
        wait_id: Id of the wait (checkpoint ``seq``), sent back as ``x-lro-wait-id``.
        children: Child operations to wait for.
        deadline_us: When to give up and resume with outcome ``timeout``.
        handle: The waiter's handle of an earlier hand-off ("" if none was recorded).
        promises: Promise ids waited for (durable methods; the server resumes itself when
            they are resolved).
        resolved: Those of ``promises`` already resolved.
        wake_at_us: A timer: the wait is not ready before this time (0: none).
    """

    parent: str
    method: str
    wait_id: int
    children: tuple[str, ...]
    deadline_us: int
    handle: str = ""
    promises: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    wake_at_us: int = 0

    @staticmethod
    def of(record: OperationRecord, checkpoint: Checkpoint, method: str = "") -> WaitTicket:
        """The ticket of the current wait of ``record`` (its checkpoint ``checkpoint``);
        ``method`` is what waiters call to resume it (default: the record's method)."""
        wait = checkpoint.wait
        if wait is None:
            raise Internal(f"{record.name} is not waiting")
        return WaitTicket(
            parent=record.name,
            method=method or record.method,
            wait_id=wait.id,
            children=wait.children,
            deadline_us=wait.deadline_us,
            handle=wait.handle,
            promises=wait.promises,
            resolved=wait.resolved,
            wake_at_us=wait.wake_at_us,
        )


class Waiter(Protocol):
    """Watches children and resumes their parent."""

    #: ``embedded`` or ``workflows``.
    kind: str

    async def hand_off(self, ticket: WaitTicket) -> str:
        """Start watching; return a handle worth recording ("" for none).

        Raises an LroError (e.g. Unavailable) if the wait could not be handed off.
        """
        ...

    async def restore(self, ticket: WaitTicket) -> None:
        """After a restart: make sure somebody watches this pending wait."""
        ...

    def forget(self, parent: str) -> None:
        """The parent is no longer waiting (resumed or done)."""
        ...
