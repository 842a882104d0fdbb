"""pytest plugin: one Cloud Spanner emulator per test process, and fresh databases in it.

Registered by ``tests/conftest.py`` (``pytest_plugins``). The emulator starts on first use
(so runs that touch no Spanner test never start it) and stops at the end of the session;
under pytest-xdist every worker has its own. While it runs, this process's environment
points the Spanner client library at it (``SpannerEmulator.activated``).

When the emulator is not installed, Spanner tests are skipped with the reason, except
under CI (``CI=true``) where they fail: a green CI run always means Spanner was tested.

Fixtures:
    spanner_emulator: the running :class:`SpannerEmulator` (session scope).
    spanner_database_url: a fresh database with the store's schema, dropped afterwards.
    spanner_new_database_url: a fresh database name that does not exist yet (for
        ``migrate``), dropped afterwards if something created it.

For the conformance suites, :func:`spanner_backend` is a ``BACKENDS`` factory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lro_server.core.clock import Clock
from lro_server.core.store import OperationStore
from lro_server.testing.spanner_emulator import (
    EmulatorNotFoundError,
    SpannerEmulator,
    find_emulator_binary,
)

# Worker threads per test store: tests are small, and the emulator runs one read-write
# transaction at a time anyway.
_TEST_THREADS = 4

# The process's emulator (at most one entry) and the environment it set.
_shared: dict[str, SpannerEmulator] = {}
_environment = contextlib.ExitStack()


def require_emulator_binary() -> str:
    """The emulator binary, or skip the test (fail it under CI) with the reason."""
    try:
        return find_emulator_binary()
    except EmulatorNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must test Spanner: {exc}", pytrace=False)
        pytest.skip(str(exc))


def shared_emulator() -> SpannerEmulator:
    """This process's emulator, started (and made the client's target) on first call."""
    if "emulator" not in _shared:
        emulator = SpannerEmulator(require_emulator_binary())
        emulator.start()
        _environment.enter_context(emulator.activated())
        _shared["emulator"] = emulator
    return _shared["emulator"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop this process's emulator and restore the environment."""
    emulator = _shared.pop("emulator", None)
    if emulator is not None:
        _environment.close()
        emulator.stop()


@pytest.fixture(scope="session")
def spanner_emulator() -> SpannerEmulator:
    """The running emulator (skips, or fails under CI, when it is not installed)."""
    return shared_emulator()


@pytest.fixture
def spanner_database_url(spanner_emulator: SpannerEmulator) -> Iterator[str]:
    """URL of a fresh database with the store's schema; dropped after the test."""
    url = spanner_emulator.create_database()
    try:
        yield url
    finally:
        spanner_emulator.drop_database(url)


@pytest.fixture
def spanner_new_database_url(spanner_emulator: SpannerEmulator) -> Iterator[str]:
    """URL of a database that does not exist yet; dropped after the test if created."""
    url = spanner_emulator.database_url()
    spanner_emulator.adopt_database(url)
    try:
        yield url
    finally:
        spanner_emulator.drop_database(url)


@dataclasses.dataclass
class SpannerBackend:
    """Same shape as the conformance suites' ``Backend``: a store and a way to open more."""

    store: OperationStore
    connect: Callable[[], Awaitable[OperationStore]] | None = None


@contextlib.asynccontextmanager
async def spanner_backend(clock: Clock, tmp_path: Path) -> AsyncIterator[Any]:
    """Conformance backend: a fresh emulator database; ``connect`` opens another replica."""
    from lro_server.storage.spanner_open import open_spanner_store

    emulator = shared_emulator()
    url = emulator.create_database()
    opened: list[OperationStore] = []

    async def connect() -> OperationStore:
        store = await open_spanner_store(url, clock=clock, threads=_TEST_THREADS)
        opened.append(store)
        return store

    try:
        yield SpannerBackend(await connect(), connect)
    finally:
        for store in opened:
            await store.close()
        emulator.drop_database(url)
