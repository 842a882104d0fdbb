"""``durable.Context``: the primitives of a durable method, each recorded in its journal.

Every primitive takes the next *position* when it is created (``ctx.call(...)``,
``ctx.start(...)``, ``ctx.step(...)``, ``ctx.sleep(...)`` and ``ctx.promise(...)`` return
objects, not coroutines), so positions follow the method's code, and ``ctx.gather`` sees
what its members are before any of them runs. Awaiting one asks the engine: a recorded
result comes back at once; anything not ready yet suspends the method (it is replayed
from the start when what it waits for is ready).

The engine behind a Context is a :class:`Runtime`; this module holds no engine code.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Generator, Mapping
from datetime import timedelta
from typing import Any, Protocol

from lro_server.durable.retry import Retry

#: The step key of the step running now (see :func:`step_key`).
STEP_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("lro_durable_step_key")


def step_key() -> str:
    """A key of the step running now, stable across its retries and replays: pass it as an
    idempotency key to the effect (a payment id, a message id) to make the step's effect
    exactly-once where the other side deduplicates.

    Raises:
        RuntimeError: Called outside a step.
    """
    try:
        return STEP_KEY.get()
    except LookupError:
        raise RuntimeError("durable.step_key() is only available inside a step") from None


class Runtime(Protocol):
    """What a Context needs from the engine (implemented by lro_server.resume)."""

    @property
    def operation(self) -> str:
        """The durable operation's name."""
        ...

    def call(self, method: str, request: Mapping[str, Any]) -> Handle:
        """Record the intent to start a child; the engine starts it before the method's
        next step, wait or end."""
        ...

    def step(
        self, name: str, function: Callable[..., Any], args: tuple[Any, ...], retry: Retry | None
    ) -> Step:
        """Take the position of a step."""
        ...

    def sleep(self, seconds: float) -> Timer:
        """Record a durable timer."""
        ...

    def promise(self, name: str) -> Promise:
        """Record a promise."""
        ...

    def resolve(self, members: tuple[Durable, ...]) -> Awaitable[list[Any]]:
        """Results of ``members`` (all ended), or suspend the method until they are."""
        ...

    def progress(self, state: str | None, message: str | None) -> None:
        """Set the operation's free-text state and message."""
        ...


class Durable:
    """Something a durable method awaits; it holds its position in the journal."""

    __slots__ = ("_runtime", "position")

    def __init__(self, runtime: Runtime, position: int) -> None:
        self._runtime = runtime
        self.position = position

    def __await__(self) -> Generator[Any, None, Any]:
        results = yield from self._runtime.resolve((self,)).__await__()
        return results[0]


class Handle(Durable):
    """A child operation started by ``ctx.start``/``ctx.call``; awaiting it returns its
    response as a dict, or raises :class:`~lro_server.durable.OperationFailed`."""

    __slots__ = ("method", "operation")

    def __init__(self, runtime: Runtime, position: int, method: str, operation: str) -> None:
        super().__init__(runtime, position)
        self.method = method
        #: The child operation's name (assigned before it starts).
        self.operation = operation


class Step(Durable):
    """A step (``ctx.step``): awaiting it runs it once, or returns its recorded result."""

    __slots__ = ("name",)

    def __init__(self, runtime: Runtime, position: int, name: str) -> None:
        super().__init__(runtime, position)
        self.name = name


class Timer(Durable):
    """A durable timer (``ctx.sleep``): awaiting it returns None once it is due."""

    __slots__ = ()


class Promise(Durable):
    """A promise (``ctx.promise``), resolved from outside by
    ``lro.durable.v1.Methods/ResolvePromise`` with its :attr:`id`."""

    __slots__ = ("id", "name")

    def __init__(self, runtime: Runtime, position: int, name: str, promise_id: str) -> None:
        super().__init__(runtime, position)
        self.name = name
        #: Hand this to the outside work that resolves the promise (it is the capability).
        self.id = promise_id


class _Gathered:
    """What ``ctx.gather`` returns: awaiting it waits for every member."""

    __slots__ = ("_members", "_runtime")

    def __init__(self, runtime: Runtime, members: tuple[Durable, ...]) -> None:
        self._runtime = runtime
        self._members = members

    def __await__(self) -> Generator[Any, None, list[Any]]:
        results: list[Any] = yield from self._runtime.resolve(self._members).__await__()
        return results


class Context:
    """The primitives of a durable method (see docs/durable.md)."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def operation(self) -> str:
        """This method's operation name (``operations/…``)."""
        return self._runtime.operation

    def call(self, method: str, request: Mapping[str, Any]) -> Handle:
        """Start ``method`` (a full gRPC method name this server serves, e.g.
        ``lro.databricks.v1.Jobs/RunNow``) as a child operation; ``await`` it for its
        response (a dict keyed by the proto's field names).

        ``request`` is the method's request in proto3 JSON form (snake_case or
        lowerCamelCase names). The child is started at the latest before the method's next
        step, wait or end, with a request id derived from this operation and the position,
        so it is never started twice.
        """
        return self._runtime.call(method, request)

    def start(self, method: str, request: Mapping[str, Any]) -> Handle:
        """Start a child as :meth:`call` does and return its handle without waiting; await
        the handle (or gather it) later."""
        return self._runtime.call(method, request)

    def gather(self, *awaitables: Durable) -> Awaitable[list[Any]]:
        """Wait for all of ``awaitables`` (children, handles, promises, timers, steps) at
        once; returns their results in order. When some failed, the first failure (in
        argument order) is raised once all have ended."""
        for member in awaitables:
            if not isinstance(member, Durable):
                raise TypeError(
                    "ctx.gather takes what ctx.call, ctx.start, ctx.step, ctx.sleep and "
                    f"ctx.promise return, not {type(member).__name__}"
                )
        return _Gathered(self._runtime, tuple(awaitables))

    def step(
        self, name: str, function: Callable[..., Any], *args: Any, retry: Retry | None = None
    ) -> Step:
        """Run ``function(*args)`` (sync: on a worker thread; async: on the loop) once, and
        record its JSON result; replays return the recorded result without running it.

        A step is at-least-once (a crash after it ran and before its result was stored
        runs it again): use :func:`step_key` inside it for effects that must happen once.
        Without ``retry`` (or once its attempts are used up) an exception becomes
        :class:`~lro_server.durable.StepFailed` in the method.
        """
        if not name or not isinstance(name, str):
            raise ValueError("a step needs a name")
        if not callable(function):
            raise TypeError(f"step {name!r}: {function!r} is not callable")
        return self._runtime.step(name, function, args, retry)

    def sleep(self, duration: timedelta | float) -> Timer:
        """A durable timer: ``await ctx.sleep(timedelta(minutes=5))``. Nothing is held open
        while it runs, and it survives restarts."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
        if not 0 <= seconds < float("inf"):
            raise ValueError("ctx.sleep needs a duration of zero or more")
        return self._runtime.sleep(seconds)

    def promise(self, name: str) -> Promise:
        """A promise named ``name``; hand ``promise.id`` to outside work, which resolves it
        with ``lro.durable.v1.Methods/ResolvePromise``. Awaiting returns the value, or
        raises :class:`~lro_server.durable.OperationFailed` for a rejection."""
        if not name or not isinstance(name, str):
            raise ValueError("a promise needs a name")
        return self._runtime.promise(name)

    def progress(self, *, state: str | None = None, message: str | None = None) -> None:
        """Show ``state`` and ``message`` in the operation's metadata (``metadata.state``
        is filterable); kept until the method sets another or ends."""
        self._runtime.progress(state, message)
