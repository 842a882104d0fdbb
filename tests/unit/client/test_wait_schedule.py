"""The schedule both operation futures wait with: WaitOperation lengths, pauses, the deadline."""

from __future__ import annotations

import pytest

from lro_server.client._following import MAX_BACKOFF_SECONDS, WAIT_CHUNK_SECONDS, WaitSchedule


def test_without_a_timeout_each_wait_is_one_chunk_and_pauses_double_up_to_the_cap():
    schedule = WaitSchedule("operations/x", None)
    assert schedule.next_wait() == WAIT_CHUNK_SECONDS
    pauses = [schedule.pause() for _ in range(6)]
    assert pauses == [0.5, 1.0, 2.0, 4.0, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]
    schedule.answered()
    assert schedule.pause() == 0.5  # an answer starts the backoff again


def test_a_timeout_bounds_each_wait_and_each_pause():
    schedule = WaitSchedule("operations/x", 0.25)
    first = schedule.next_wait()
    assert 0 < first <= 0.25
    assert schedule.pause() <= first  # never past the deadline seen before the call


def test_a_passed_deadline_is_a_timeout_error_naming_the_operation():
    schedule = WaitSchedule("operations/late", 0)
    with pytest.raises(TimeoutError, match=r"operations/late did not complete within 0 seconds"):
        schedule.next_wait()
