"""Timers and promises of waits: the server resumes those itself, in every waiter mode.

A durable method may wait on a time (``ctx.sleep``, a step's retry backoff) or on promises
as well as on children. Children are watched by the mode's waiter (embedded, or a Cloud
Workflows execution polling them); what no poll can see is handled here, in-process:

- a timer per wait fires at its ``wake_at`` and resumes it (outcome ``done``);
- a wait on promises or a timer also gets a timer at its deadline (outcome ``timeout``);
- a wait whose promises are all resolved (and no children) is resumed at once;
- a wait without children is never handed to the inner waiter (no execution, no poll).

Every resume goes through :meth:`Resumer.resume` with the wait id, so a timer of a wait
that moved on is a no-op; after a restart or a replica's death, recovery and the sweep
(:mod:`lro_server.resume.sweep`) restore what these in-memory timers held.
"""

from __future__ import annotations

from collections.abc import Callable

from lro_server.core.clock import Clock, Timer, now_us
from lro_server.resume.method import WaitOutcome
from lro_server.resume.waiter import Waiter, WaitTicket

#: Resumes a ticket's wait in the background (Resumer.spawn of Resumer.resume_ticket).
Resume = Callable[[WaitTicket, WaitOutcome], None]


class TimedWaiter:
    """A Waiter that handles timers and promises itself and children through ``inner``.

    Args:
        inner: The mode's waiter (embedded or workflows).
        resume: Resumes a wait in the background.
        clock: Time of the timers.
    """

    def __init__(self, inner: Waiter, resume: Resume, clock: Clock) -> None:
        self.inner = inner
        self.kind = inner.kind
        self._resume = resume
        self.clock = clock
        self._timers: dict[str, list[Timer]] = {}

    @property
    def pending(self) -> int:
        """Waits holding a timer here."""
        return len(self._timers)

    async def hand_off(self, ticket: WaitTicket) -> str:
        """Arm the wait's timers; hand its children (if any) to the inner waiter."""
        self._arm(ticket)
        if ticket.children:
            return await self.inner.hand_off(ticket)
        return ""

    async def restore(self, ticket: WaitTicket) -> None:
        """After a restart: the same as a hand-off (the inner waiter decides for children)."""
        self._arm(ticket)
        if ticket.children:
            await self.inner.restore(ticket)

    def forget(self, parent: str) -> None:
        """The parent is no longer waiting."""
        self._cancel(parent)
        self.inner.forget(parent)

    def _arm(self, ticket: WaitTicket) -> None:
        self._cancel(ticket.parent)
        if not (ticket.promises or ticket.wake_at_us):
            return
        now = now_us(self.clock)
        timers: list[Timer] = []
        if ticket.wake_at_us:
            timers.append(self._at(ticket, ticket.wake_at_us - now, WaitOutcome.DONE))
        elif set(ticket.promises) <= set(ticket.resolved) and not ticket.children:
            timers.append(self._at(ticket, 0, WaitOutcome.DONE))
        timers.append(self._at(ticket, ticket.deadline_us - now, WaitOutcome.TIMEOUT))
        self._timers[ticket.parent] = timers

    def _at(self, ticket: WaitTicket, delay_us: int, outcome: WaitOutcome) -> Timer:
        return self.clock.call_later(max(0.0, delay_us / 1e6), lambda: self._fire(ticket, outcome))

    def _fire(self, ticket: WaitTicket, outcome: WaitOutcome) -> None:
        early = ticket.wake_at_us - now_us(self.clock)
        if outcome is WaitOutcome.DONE and early > 0:
            # Event-loop timers may fire up to the clock's resolution early, and the wall
            # clock (which wake_at is in) drifts from the loop's: a resume now would find
            # the timer not due and change nothing, so wait for the rest.
            timer = self._at(ticket, early + 1000, outcome)
            self._timers.setdefault(ticket.parent, []).append(timer)
            return
        self._resume(ticket, outcome)

    def _cancel(self, parent: str) -> None:
        for timer in self._timers.pop(parent, ()):
            timer.cancel()
