"""Fixtures for the Databricks simulator tests: a manual clock, a simulator, an SDK client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.clock import Clock as SdkClock
from databricks.sdk.config import Config

from lro_server.testing.databricks_sim import ManualClock, SimulatorThread


class InstantSdkClock(SdkClock):
    """An SDK clock whose sleeps only move virtual time: retries cost no real time."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def sim_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(sim_clock: ManualClock) -> Iterator[SimulatorThread]:
    with SimulatorThread(clock=sim_clock) as running:
        yield running


@pytest.fixture
def sdk_clock() -> InstantSdkClock:
    return InstantSdkClock()


@pytest.fixture
def make_client(sim: SimulatorThread, sdk_clock: InstantSdkClock) -> Callable[..., WorkspaceClient]:
    def make(**overrides: Any) -> WorkspaceClient:
        options: dict[str, Any] = {
            "host": sim.url,
            "token": "t",
            "auth_type": "pat",
            "retry_timeout_seconds": 30,
            "http_timeout_seconds": 5,
            "clock": sdk_clock,
        }
        options.update(overrides)
        return WorkspaceClient(config=Config(**options))

    return make


@pytest.fixture
def w(make_client: Callable[..., WorkspaceClient]) -> WorkspaceClient:
    return make_client()
