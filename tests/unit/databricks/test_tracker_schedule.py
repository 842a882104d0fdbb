"""The tracker's poll schedule: a heap with lazy deletion, checked against a plain scan."""

from __future__ import annotations

import math
import random

import pytest

from lro_server.databricks.tracker_state import Schedule, TrackerOptions

OPTIONS = TrackerOptions(holder="r1", poll_interval_seconds=5.0, max_poll_interval_seconds=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScanSchedule:
    """The obvious schedule: every question answered by scanning every entry."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        # name -> [due, interval, busy, poked since its poll began]
        self.entries: dict[str, list[float | bool]] = {}

    def add(self, name: str, delay: float) -> None:
        due = self.clock() + delay
        if name not in self.entries:
            self.entries[name] = [due, OPTIONS.poll_interval_seconds, False, False]
        else:
            self.entries[name][0] = min(float(self.entries[name][0]), due)

    def poke(self, name: str) -> bool:
        if name not in self.entries:
            return False
        self.entries[name][0:2] = [0.0, OPTIONS.poll_interval_seconds]
        self.entries[name][3] = True
        return True

    def drop(self, name: str) -> None:
        self.entries.pop(name, None)

    def keep_only(self, claimed: set[str]) -> None:
        for name in list(self.entries):
            if name not in claimed and not self.entries[name][2]:
                del self.entries[name]
        for name in claimed:
            self.entries.setdefault(name, [0.0, OPTIONS.poll_interval_seconds, False, False])

    def due(self, now: float) -> set[str]:
        ready = {n for n, e in self.entries.items() if not e[2] and float(e[0]) <= now}
        for name in ready:
            self.entries[name][2:4] = [True, False]
        return ready

    def take(self, names: list[str]) -> list[str]:
        taken = [n for n in names if n in self.entries and not self.entries[n][2]]
        for name in taken:
            self.entries[name][2:4] = [True, False]
        return taken

    def finished(self, name: str) -> None:
        if name in self.entries:
            self.entries[name][2] = False

    def backoff(self, name: str, changed: bool) -> None:
        if name not in self.entries:
            return
        entry = self.entries[name]
        interval = float(entry[1])
        entry[1] = (
            OPTIONS.poll_interval_seconds
            if changed
            else min(interval * OPTIONS.backoff, OPTIONS.max_poll_interval_seconds)
        )
        entry[0] = self.clock() + (0.0 if entry[3] else float(entry[1]))
        entry[3] = False

    def next_due(self) -> float:
        return min((float(e[0]) for e in self.entries.values() if not e[2]), default=math.inf)


@pytest.mark.parametrize("seed", range(20))
def test_the_heap_answers_as_a_scan_of_every_entry_would(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    schedule, reference = Schedule(OPTIONS, clock), ScanSchedule(clock)
    names = [f"operations/{i}" for i in range(12)]
    for step in range(600):
        name = rng.choice(names)
        action = rng.randrange(10)
        if action == 0:
            delay = rng.choice([0.0, 0.05, 1.0, 5.0])
            schedule.add(name, delay=delay)
            reference.add(name, delay)
        elif action == 1:
            assert schedule.poke(name) == reference.poke(name)
        elif action == 2:
            schedule.drop(name)
            reference.drop(name)
        elif action == 3:
            claimed = set(rng.sample(names, rng.randrange(len(names))))
            schedule.keep_only(claimed)
            reference.keep_only(claimed)
        elif action == 4:
            batch = rng.sample(names, 3)
            assert schedule.take(batch) == reference.take(batch)
        elif action == 5:
            schedule.finished(name)
            reference.finished(name)
        elif action == 6:
            changed = rng.random() < 0.3
            schedule.backoff(name, changed=changed)
            reference.backoff(name, changed)
        elif action == 7:
            clock.now += rng.choice([0.01, 0.5, 3.0, 20.0])
        else:
            assert set(schedule.due(clock.now)) == reference.due(clock.now), f"step {step}"
        assert schedule.next_due() == reference.next_due(), f"step {step}"
        assert sorted(schedule.names()) == sorted(reference.entries)


def test_a_busy_operation_is_not_due_until_its_poll_is_finished() -> None:
    clock = Clock()
    schedule = Schedule(OPTIONS, clock)
    schedule.add("operations/a", delay=0.0)
    assert schedule.due(clock.now) == ["operations/a"]
    schedule.backoff("operations/a", changed=False)  # during the poll
    clock.now += 60.0
    assert schedule.due(clock.now) == []
    assert schedule.next_due() == math.inf

    schedule.finished("operations/a")

    assert schedule.next_due() == 100.0 + 7.5
    assert schedule.due(clock.now) == ["operations/a"]


def test_stale_items_do_not_pile_up() -> None:
    clock = Clock()
    schedule = Schedule(OPTIONS, clock)
    for _ in range(1_000):
        schedule.add("operations/a", delay=0.0)
        schedule.poke("operations/a")
        clock.now += 0.001
    assert len(schedule._heap) <= 2 * 1 + 64 + 1
    assert schedule.due(clock.now) == ["operations/a"]


def test_a_poke_during_a_poll_makes_the_next_poll_follow_at_once() -> None:
    clock = Clock()
    schedule = Schedule(OPTIONS, clock)
    schedule.add("operations/a", delay=0.0)
    assert schedule.due(clock.now) == ["operations/a"]
    assert schedule.poke("operations/a", alone=True)  # e.g. a cancel, after the poll's read
    schedule.backoff("operations/a", changed=False)
    schedule.finished("operations/a")

    assert schedule.due(clock.now) == ["operations/a"]
    assert schedule.take_alone("operations/a")
    assert not schedule.take_alone("operations/a")
    schedule.backoff("operations/a", changed=False)  # no poke this time: the interval
    schedule.finished("operations/a")
    assert schedule.next_due() == 100.0 + 5.0 * OPTIONS.backoff**2  # backed off twice
