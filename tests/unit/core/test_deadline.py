"""The deadline of the call being served: seen by the task serving it, and by no other."""

from __future__ import annotations

import asyncio
import math

from lro_server.core.deadline import remaining, serving


async def test_only_the_serving_task_sees_the_deadline():
    assert remaining() is None  # not serving a call
    with serving(2.0):
        left = remaining()
        assert left is not None and 1.0 < left <= 2.0
        # Work handed to another task (a waiter, a background start) keeps its own budgets.
        assert await asyncio.create_task(_remaining()) is None
        with serving(0.5):
            inner = remaining()
            assert inner is not None and inner <= 0.5
        after = remaining()
        assert after is not None and after > 0.5  # the outer call's deadline again
    assert remaining() is None


async def test_a_call_without_a_deadline_has_all_the_time():
    with serving(None):
        assert remaining() == math.inf


async def _remaining() -> float | None:
    return remaining()
