"""The embedded waiter: resumes parents inside the server when their children finish.

Woken by the store's change notifications (an ObservedStore listener): when an awaited
child is written done, the parent is resumed through :meth:`Resumer.resume`, the same code
path as a workflow's resume call. A timer per wait resumes with outcome ``timeout`` at the
parent's deadline. Nothing is only in memory: every wait is in its parent's checkpoint,
so after a restart :meth:`Resumer.recover` hands each pending wait back here. A child
finished by another replica raises no local notification; a periodic re-read of the
awaited children (every ``recheck_seconds``) covers that case.
"""

from __future__ import annotations

import dataclasses
import logging

from lro_server.core.clock import Clock, SystemClock, Timer, to_micros
from lro_server.core.errors import FailedPrecondition, LroError, NotFound
from lro_server.core.principal import INTERNAL
from lro_server.core.record import OperationRecord
from lro_server.core.store import OperationStore
from lro_server.core.supervisor import Supervised, Supervisor
from lro_server.resume.engine import Resumer
from lro_server.resume.method import WaitOutcome
from lro_server.resume.waiter import WaitTicket

_log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class _Wait:
    ticket: WaitTicket
    pending: set[str]
    timer: Timer | None = None


class EmbeddedWaiter:
    """In-process waiter (``LRO_WAITER=embedded``).

    Args:
        resumer: The engine to resume through.
        store: The store, to re-read children.
        clock: Time source of deadlines.
        recheck_seconds: Interval of the safety re-read of awaited children.
    """

    kind = "embedded"

    def __init__(
        self,
        resumer: Resumer,
        store: OperationStore,
        *,
        clock: Clock | None = None,
        recheck_seconds: float = 10.0,
    ) -> None:
        self.resumer = resumer
        self.store = store
        self.clock = clock or SystemClock()
        self.recheck_seconds = recheck_seconds
        self._waits: dict[str, _Wait] = {}
        self._by_child: dict[str, set[str]] = {}
        self._loop: Supervised | None = None
        #: Resumes triggered so far (for tests and metrics).
        self.resumes = 0

    @property
    def pending(self) -> int:
        """Number of parents waiting here."""
        return len(self._waits)

    # -- Waiter ----------------------------------------------------------------------------

    async def hand_off(self, ticket: WaitTicket) -> str:
        """Register the wait, then look at the children once (they may be done already)."""
        self._register(ticket)
        await self._check(ticket.parent)
        return ""

    async def restore(self, ticket: WaitTicket) -> None:
        """Re-register a wait found in a checkpoint after a restart."""
        await self.hand_off(ticket)

    def forget(self, parent: str) -> None:
        """Drop the wait of ``parent``."""
        wait = self._waits.pop(parent, None)
        if wait is None:
            return
        if wait.timer is not None:
            wait.timer.cancel()
        for child in wait.ticket.children:
            parents = self._by_child.get(child)
            if parents is not None:
                parents.discard(parent)
                if not parents:
                    del self._by_child[child]

    # -- wake-ups --------------------------------------------------------------------------

    def on_change(self, name: str, record: OperationRecord | None) -> None:
        """ObservedStore listener: a child was written (None: deleted)."""
        parents = self._by_child.get(name)
        if not parents or (record is not None and not record.done):
            return
        for parent in list(parents):
            wait = self._waits.get(parent)
            if wait is None:
                continue
            wait.pending.discard(name)
            if not wait.pending:
                self._resume(wait.ticket, WaitOutcome.DONE)

    def _register(self, ticket: WaitTicket) -> None:
        self.forget(ticket.parent)
        wait = _Wait(ticket, set(ticket.children))
        self._waits[ticket.parent] = wait
        for child in ticket.children:
            self._by_child.setdefault(child, set()).add(ticket.parent)
        delay = max(0.0, (ticket.deadline_us - to_micros(self.clock.now())) / 1e6)
        wait.timer = self.clock.call_later(delay, lambda: self._resume(ticket, WaitOutcome.TIMEOUT))

    async def _check(self, parent: str) -> None:
        wait = self._waits.get(parent)
        if wait is None:
            return
        for child in list(wait.pending):
            try:
                record = await self.store.get(child)
            except NotFound:
                record = None
            if record is None or record.done:
                wait.pending.discard(child)
        if not wait.pending and self._waits.get(parent) is wait:
            self._resume(wait.ticket, WaitOutcome.DONE)

    def _resume(self, ticket: WaitTicket, outcome: WaitOutcome) -> None:
        if self._waits.get(ticket.parent) is None:
            return
        current = self._waits[ticket.parent]
        if current.ticket.wait_id != ticket.wait_id:
            return
        self.forget(ticket.parent)
        self.resumes += 1
        self.resumer.spawn(self._resume_now(ticket, outcome))

    async def _resume_now(self, ticket: WaitTicket, outcome: WaitOutcome) -> None:
        try:
            await self.resumer.resume(
                ticket.parent,
                INTERNAL,
                method=ticket.method,
                wait_id=ticket.wait_id,
                outcome=outcome,
            )
        except LroError as exc:
            if isinstance(exc, (NotFound, FailedPrecondition)):
                return  # deleted, done or moved on: nobody waits any more
            # Transient (e.g. the store is unavailable): keep the wait; the re-read retries.
            _log.warning("%s: resume failed, will retry: %s", ticket.parent, exc)
            if ticket.parent not in self._waits:
                self._register(ticket)

    # -- life --------------------------------------------------------------------------------

    def launch(self, supervisor: Supervisor) -> None:
        """Start the periodic re-read of awaited children under ``supervisor``."""
        self._loop = supervisor.start("embedded-waiter", self._recheck_loop)

    async def stop(self) -> None:
        """Stop timers and the re-read loop (pending waits stay in their checkpoints)."""
        if self._loop is not None:
            await self._loop.stop()
        for parent in list(self._waits):
            self.forget(parent)

    async def _recheck_loop(self) -> None:
        while True:
            await self.clock.sleep(self.recheck_seconds)
            for parent in list(self._waits):
                try:
                    await self._check(parent)
                except Exception:
                    _log.exception("%s: re-reading children failed", parent)
