"""One activation of a durable method: the user's coroutine replayed against its journal.

The function runs from its start as a plain coroutine. Each primitive takes the next
position when it is created and compares itself with what the journal recorded there (a
different kind, name or request is drift: the operation fails FAILED_PRECONDITION naming
the position and both). Recorded outcomes return at once. Anything new is an *intent*,
an event kept in memory until the next commit:

- before a step runs, pending events are committed and pending children started (a
  child must be running before a slow step, and the step's result durable before the
  next effect), then the step runs (:mod:`lro_server.resume.durable_steps`) and its
  outcome becomes a pending event;
- awaiting what is not ready raises :class:`Suspend` (a BaseException, so the method's
  ``except Exception`` does not catch it); the engine then commits the pending events
  with the wait, starts the children and hands the wait off.

Effects run only after this activation has committed once (it then owns the operation:
a second activation of the same wait loses its first compare-and-set and stops).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from lro_server.core.clock import Clock, now_us
from lro_server.core.errors import Aborted, Code, Internal, LroError, Unavailable
from lro_server.core.names import new_operation_name, operation_id
from lro_server.durable.context import (
    Durable,
    Handle,
    Promise,
    Step,
    Timer,
)
from lro_server.durable.errors import OperationFailed, StepFailed
from lro_server.durable.retry import Retry
from lro_server.resume import durable_journal as journal
from lro_server.resume import durable_steps as steps
from lro_server.resume.durable_journal import Fold
from lro_server.resume.method import derived_request_id, parent_of_request

_log = logging.getLogger(__name__)

#: Request ids of durable children start with this, then ``<parent id>-<position>``.
CHILD_PREFIX = "durable-"


def durable_parent(child_request_id: str) -> str | None:
    """The durable method whose child has this request id (``durable-<id>-<pos>``), or None."""
    found = parent_of_request(CHILD_PREFIX, child_request_id)
    return found[0] if found else None


class Suspend(BaseException):
    """The method awaits what is not ready: the children, promises and time listed."""

    def __init__(self, children: set[str], promises: set[str], wake_at_us: int) -> None:
        super().__init__("suspended")
        self.children = children
        self.promises = promises
        self.wake_at_us = wake_at_us


class Drift(BaseException):
    """The code no longer matches its journal."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Stop(BaseException):
    """The operation was cancelled, or its deadline passed, while the method ran."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class Intent:
    """A child to start: pre-assigned name and AIP-155 request id."""

    position: int
    method: str
    request: dict[str, Any]
    child: str
    request_id: str
    #: Started before, but the child does not exist: started again (it may be refused).
    again: bool = False


class Host(Protocol):
    """What an activation needs from its engine."""

    async def commit_running(self, activation: Activation) -> None:
        """Commit the pending events (not waiting); raises Stop on cancel or deadline."""
        ...

    async def start_child(self, activation: Activation, intent: Intent) -> None:
        """Start one child; raises the LroError that refused it."""
        ...

    async def heartbeat(self, activation: Activation) -> None:
        """While a long step runs: keep writing that the operation is alive (forever)."""
        ...


class Activation:
    """Implements :class:`lro_server.durable.context.Runtime` for one run of a method.

    Args:
        host: The engine (commits, starts children).
        parent: The operation's name.
        fold: The journal as stored, folded.
        missing: Positions of calls whose child does not exist (started again on replay).
        clock: Time of timers and retries.
    """

    def __init__(
        self,
        host: Host,
        parent: str,
        fold: Fold,
        *,
        missing: set[int],
        clock: Clock,
        progress: tuple[str, str],
    ) -> None:
        self.host = host
        self.parent = parent
        self.fold = fold
        self.clock = clock
        self.missing = missing
        #: Positions recorded before this activation (sleeps up to here have elapsed).
        self.recorded_last = fold.last_position
        #: Events not committed yet (JSON objects, in order).
        self.pending: list[dict[str, Any]] = []
        #: Children to start after the next commit.
        self.to_start: list[Intent] = []
        #: (state, message) set by ctx.progress (or kept from earlier activations).
        self.progress_state = progress
        #: Committed at least once: this activation owns the operation.
        self.owned = False
        self._position = 0
        self._steps: dict[int, tuple[Callable[..., Any], tuple[Any, ...], Retry | None]] = {}
        self._id = operation_id(parent)
        #: Keeps the operation alive while one of its steps runs long.
        self.watch = steps.Watch(clock, lambda: host.heartbeat(self))

    # -- Runtime ---------------------------------------------------------------------------

    @property
    def operation(self) -> str:
        """The method's operation name."""
        return self.parent

    def call(self, method: str, request: Mapping[str, Any]) -> Handle:
        """See Runtime.call."""
        if not isinstance(method, str) or "/" not in method:
            raise ValueError(f"ctx.call needs a full method name like Service/Method: {method!r}")
        if not isinstance(request, Mapping):
            raise TypeError("ctx.call needs the request as a dict")
        body: dict[str, Any] = json.loads(json.dumps(request))
        position, slot = self._take(journal.CALL, method, journal.digest(body))
        if slot is not None:
            if position in self.missing:
                self.missing.discard(position)
                again = Intent(position, method, body, slot.child, slot.request_id, again=True)
                self.to_start.append(again)
            return Handle(self, position, method, slot.child)
        request_id = derived_request_id(CHILD_PREFIX, self.parent, position)
        intent = Intent(position, method, body, new_operation_name(), request_id)
        self._record(
            {
                "kind": journal.CALL,
                "pos": position,
                "method": method,
                "digest": journal.digest(body),
                "child": intent.child,
                "request_id": intent.request_id,
            }
        )
        self.to_start.append(intent)
        return Handle(self, position, method, intent.child)

    def step(
        self, name: str, function: Callable[..., Any], args: tuple[Any, ...], retry: Retry | None
    ) -> Step:
        """See Runtime.step."""
        position, _ = self._take(journal.STEP, name, "")
        self._steps[position] = (function, args, retry)
        return Step(self, position, name)

    def sleep(self, seconds: float) -> Timer:
        """See Runtime.sleep."""
        position, slot = self._take(journal.SLEEP, "", "")
        if slot is None:
            until = now_us(self.clock) + round(seconds * 1_000_000)
            self._record({"kind": journal.SLEEP, "pos": position, "until_us": until})
        return Timer(self, position)

    def promise(self, name: str) -> Promise:
        """See Runtime.promise."""
        position, slot = self._take(journal.PROMISE, name, "")
        if slot is None:
            secret = journal.new_secret()
            self._record({"kind": journal.PROMISE, "pos": position, "name": name, "secret": secret})
        else:
            secret = slot.secret
        return Promise(self, position, name, journal.promise_id(self.parent, position, secret))

    def progress(self, state: str | None, message: str | None) -> None:
        """See Runtime.progress."""
        current_state, current_message = self.progress_state
        self.progress_state = (
            current_state if state is None else str(state)[:200],
            current_message if message is None else str(message)[:2000],
        )

    def resolve(self, members: tuple[Durable, ...]) -> Awaitable[list[Any]]:
        """See Runtime.resolve."""
        return self._resolve(members)

    # -- positions and drift ---------------------------------------------------------------

    def _take(self, kind: str, name: str, request_digest: str) -> tuple[int, journal.Slot | None]:
        position = self._position
        self._position += 1
        slot = self.fold.slots.get(position)
        if slot is not None and (
            slot.kind != kind
            or slot.name != name
            or (kind == journal.CALL and slot.digest != request_digest)
        ):
            now = journal.Slot(kind, name=name, digest=request_digest).describe()
            raise Drift(
                f"position {position}: the journal has {slot.describe()}, but the method "
                f"now makes {now}; code between awaits must be deterministic (see "
                "docs/durable.md, versioning)"
            )
        return position, slot

    @property
    def positions(self) -> int:
        """Positions the code created so far."""
        return self._position

    def _record(self, event: dict[str, Any]) -> None:
        self.pending.append(event)
        self.fold.apply(0, event)

    # -- waiting ---------------------------------------------------------------------------

    async def _resolve(self, members: tuple[Durable, ...]) -> list[Any]:
        results: list[Any] = [None] * len(members)
        failures: list[OperationFailed] = []
        children: set[str] = set()
        promises: set[str] = set()
        wake_at = 0
        for index, member in enumerate(members):
            if isinstance(member, Step):
                try:
                    results[index] = await self._run_step(member)
                except OperationFailed as failure:
                    failures.append(failure)
                except Suspend as suspended:
                    wake_at = max(wake_at, suspended.wake_at_us)
                continue
            slot = self.fold.slots[member.position]
            if isinstance(member, Timer):
                due = slot.until_us <= now_us(self.clock) or member.position < self.recorded_last
                if not due:
                    wake_at = max(wake_at, slot.until_us)
                continue
            if not slot.done:
                if isinstance(member, Promise):
                    promises.add(member.id)
                else:
                    children.add(slot.child)
                continue
            if slot.error is not None:
                source = member.id if isinstance(member, Promise) else slot.child
                code, message = int(slot.error.get("code", 2)), str(slot.error.get("message", ""))
                failures.append(OperationFailed(code, message, source))
            else:
                results[index] = slot.result
        if children and any(intent.again for intent in self.to_start):
            # A child started before does not exist: start it in this activation, so a
            # refusal becomes its outcome here instead of an endless wait.
            await self.flush()
            return await self._resolve(members)
        if children or promises or wake_at:
            raise Suspend(children, promises, wake_at)
        if failures:
            raise failures[0]
        return results

    async def _run_step(self, step: Step) -> Any:
        position = step.position
        slot = self.fold.slots.get(position)
        if slot is not None and slot.done:
            return _recorded(slot, step)
        if slot is not None and slot.retry_at_us > now_us(self.clock):
            raise Suspend(set(), set(), slot.retry_at_us)
        attempt = (slot.attempts if slot is not None else 0) + 1
        await self.flush()
        slot = self.fold.slots.get(position)
        if slot is not None and slot.done:
            # Recorded by the activation this one took over from, after this one's replay
            # read the journal (the claim in flush folded it in): never run again.
            return _recorded(slot, step)
        function, args, retry = self._steps[position]
        try:
            result = await steps.run(function, args, key=f"{self._id}/{position}", watch=self.watch)
        except Exception as exc:
            failure = steps.failed(
                self.parent, step, attempt, retry, exc, now_us=now_us(self.clock)
            )
            self._record(failure)
            if failure["final"]:
                raise StepFailed(Code.UNKNOWN, failure["error"]["message"], step.name) from exc
            raise Suspend(set(), set(), failure["retry_at_us"]) from exc
        self._record(
            {"kind": journal.STEP_DONE, "pos": position, "name": step.name, "result": result}
        )
        return result

    # -- commits and effects -----------------------------------------------------------------

    async def flush(self) -> None:
        """Commit pending events (or claim the operation), then start pending children."""
        if self.pending or not self.owned:
            await self.host.commit_running(self)
        await self.start_children(raise_refusals=False)

    async def start_children(self, *, raise_refusals: bool) -> None:
        """Start the pending children. A refusal becomes the child's outcome (recorded with
        the next commit) unless ``raise_refusals`` (after the last commit: the next
        activation starts it again and records it); a transient failure propagates."""
        while self.to_start:
            intent = self.to_start.pop(0)
            try:
                await self.host.start_child(self, intent)
            except (Unavailable, Aborted, Internal):
                self.to_start.insert(0, intent)
                raise
            except LroError as exc:
                if raise_refusals:
                    _log.warning("%s: child at %d refused: %s", self.parent, intent.position, exc)
                    continue
                self._record(
                    {
                        "kind": journal.CHILD_DONE,
                        "pos": intent.position,
                        "error": journal.error_json(exc.code, exc.message),
                    }
                )

    def committed(self, merged: list[tuple[int, dict[str, Any]]]) -> None:
        """The pending events are stored; ``merged`` are events others appended meanwhile."""
        self.pending.clear()
        self.owned = True
        for seq, event in merged:
            self.fold.apply(seq, event)


def _recorded(slot: journal.Slot, step: Step) -> Any:
    """The recorded outcome of a step: its result, or its final failure raised."""
    if slot.error is not None:
        raise StepFailed(Code.UNKNOWN, str(slot.error.get("message", "")), step.name)
    return slot.result
