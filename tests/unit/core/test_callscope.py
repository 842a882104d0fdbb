"""One scope per call: operation, trace and deadline in one context variable, changed only
by entering a changed copy, so tasks handed a scope keep what they were handed."""

from __future__ import annotations

import asyncio

from lro_server.core import callscope
from lro_server.core.callscope import CallScope
from lro_server.core.deadline import remaining, serving
from lro_server.core.logcontext import (
    Trace,
    bound,
    current_operation,
    current_trace,
    set_operation,
)

TRACE = Trace("a" * 32, "b" * 16, True)


async def test_a_call_scope_names_its_operation_and_trace_and_is_left_after() -> None:
    assert (current_operation(), current_trace()) == ("", None)
    scope = CallScope("operations/one", TRACE, serving=True, task=asyncio.current_task())
    token = callscope.enter(scope)
    try:
        assert (current_operation(), current_trace()) == ("operations/one", TRACE)
        assert remaining() is not None  # serving this task, without a deadline: all the time
    finally:
        callscope.leave(token)
    assert (current_operation(), current_trace(), remaining()) == ("", None, None)


async def test_set_operation_enters_a_copy_and_tasks_keep_what_they_were_handed() -> None:
    started = asyncio.Event()
    go_on = asyncio.Event()
    seen: list[str] = []

    async def child() -> None:
        started.set()
        await go_on.wait()
        seen.append(current_operation())

    scope = CallScope("operations/first", TRACE, serving=True, task=asyncio.current_task())
    token = callscope.enter(scope)
    try:
        task = asyncio.create_task(child())
        await started.wait()
        set_operation("operations/second")
        assert current_operation() == "operations/second"
        assert current_trace() == TRACE  # the rest of the scope comes along
        assert scope.operation == "operations/first"  # not changed in place
        go_on.set()
        await task
    finally:
        callscope.leave(token)
    assert seen == ["operations/first"]
    assert current_operation() == ""  # leaving the call's scope drops the change as well


async def test_bound_keeps_what_it_is_not_given_and_restores_after() -> None:
    with serving(5.0), bound(trace=TRACE):
        with bound(operation="operations/poll"):
            assert (current_operation(), current_trace()) == ("operations/poll", TRACE)
            left = remaining()
            assert left is not None and 4.0 < left <= 5.0  # still serving the same call
        assert (current_operation(), current_trace()) == ("", TRACE)
    assert (current_operation(), current_trace(), remaining()) == ("", None, None)


async def test_a_scope_outside_any_call_has_no_deadline() -> None:
    # A tracker poll or a resume binds its operation and trace, and serves no call.
    with bound(operation="operations/polled", trace=TRACE):
        assert remaining() is None
        assert current_operation() == "operations/polled"


def test_off_a_running_loop_a_served_call_still_has_its_deadline() -> None:
    with serving(2.0):
        left = remaining()
        assert left is not None and 1.0 < left <= 2.0
    assert remaining() is None
