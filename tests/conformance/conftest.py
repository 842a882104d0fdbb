"""Backends the conformance suites run against, and the fixtures that open them.

Each entry of ``BACKENDS`` is an async context manager factory: given a fake clock and a
private directory, it yields a :class:`Backend` around a fresh, empty store and closes
everything on exit. Adding a backend is one line here; a factory whose backend is not
available on this machine calls ``pytest.skip``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from spanner_fixtures import spanner_backend

from lro_server.core.store import OperationStore
from lro_server.storage.sqlite import SqliteStore
from lro_server.testing.clock import FakeClock
from lro_server.testing.memory_store import MemoryData, MemoryStore


@dataclasses.dataclass
class Backend:
    """A store under test.

    Attributes:
        store: A fresh, empty store using the test's fake clock.
        connect: Opens one more store over the same data (a second replica, or the same
            process after a restart), or None when the backend cannot (in-memory SQLite).
            The factory closes what it opened.
    """

    store: OperationStore
    connect: Callable[[], Awaitable[OperationStore]] | None = None


BackendFactory = Callable[[FakeClock, Path], AbstractAsyncContextManager[Backend]]


@contextlib.asynccontextmanager
async def sqlite_file(clock: FakeClock, tmp_path: Path) -> AsyncIterator[Backend]:
    """SQLite on a file; ``connect`` opens another connection, as a second process would."""
    opened: list[SqliteStore] = []

    async def connect() -> OperationStore:
        store = SqliteStore(tmp_path / "operations.db", clock)
        opened.append(store)
        return store

    try:
        yield Backend(await connect(), connect)
    finally:
        for store in opened:
            await store.close()


@contextlib.asynccontextmanager
async def sqlite_memory(clock: FakeClock, tmp_path: Path) -> AsyncIterator[Backend]:
    """SQLite in memory (the ``sqlite://`` URL)."""
    store = SqliteStore(":memory:", clock)
    try:
        yield Backend(store)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def memory(clock: FakeClock, tmp_path: Path) -> AsyncIterator[Backend]:
    """The in-memory reference store; ``connect`` opens another store over the same data."""
    data = MemoryData()
    opened: list[MemoryStore] = []

    async def connect() -> OperationStore:
        store = MemoryStore(clock, data=data)
        opened.append(store)
        return store

    try:
        yield Backend(await connect(), connect)
    finally:
        for store in opened:
            await store.close()


BACKENDS: dict[str, BackendFactory] = {
    "memory": memory,
    "sqlite": sqlite_file,
    "sqlite-memory": sqlite_memory,
    "spanner": spanner_backend,
}


@pytest.fixture
def clock() -> FakeClock:
    """The time every store of the test uses; it moves only when the test moves it."""
    return FakeClock()


@pytest.fixture(params=sorted(BACKENDS))
async def backend(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Backend]:
    """Each registered backend in turn."""
    async with BACKENDS[request.param](clock, tmp_path) as opened:
        yield opened


@pytest.fixture
def store(backend: Backend) -> OperationStore:
    """The backend's fresh store."""
    return backend.store


@pytest.fixture
def connect(backend: Backend) -> Callable[[], Awaitable[OperationStore]]:
    """Opens another store over the same data; skips backends that cannot."""
    if backend.connect is None:
        pytest.skip("this backend cannot open a second store over the same data")
    return backend.connect
