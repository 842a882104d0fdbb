"""Store URLs to backends: open_store and migrate_store for ``sqlite://`` and ``spanner://``."""

from __future__ import annotations

from typing import Any

from lro_server.core.clock import Clock, SystemClock
from lro_server.core.errors import InvalidArgument
from lro_server.core.store import OperationStore

#: The URL schemes open_store understands, as users write them.
SCHEMES = ("sqlite://", "spanner://")


async def open_store(
    url: str, *, clock: Clock | None = None, **backend_options: Any
) -> OperationStore:
    """Open the backend ``url`` names; the caller closes it.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite://`` (memory) or
            ``spanner://projects/P/instances/I/databases/D``.
        clock: Source of create/update times and lease expiry (system clock by default).
        **backend_options: Passed to the backend's opener unchanged.

    Raises:
        InvalidArgument: The scheme is unknown or the URL malformed.
        Unavailable: The backend cannot be reached.
    """
    clock = clock or SystemClock()
    if url.startswith("sqlite://"):
        from lro_server.storage.sqlite_open import open_sqlite_store

        return open_sqlite_store(url, clock, **backend_options)
    if url.startswith("spanner://"):
        # Imported lazily: the Spanner client is heavy and unused by SQLite deployments.
        from lro_server.storage.spanner_open import open_spanner_store

        return await open_spanner_store(url, clock=clock, **backend_options)
    raise _unsupported(url)


async def migrate_store(url: str, *, retention_days: int | None = None) -> list[str]:
    """Create or upgrade the schema of the store ``url`` names (``lro-server migrate``).

    Safe to run repeatedly and while servers run.

    Args:
        url: As for :func:`open_store`.
        retention_days: Days a done operation is kept, for backends that delete expired
            operations themselves (Spanner's row deletion policy); None for the backend's
            default. SQLite keeps every operation until it is deleted.

    Returns:
        The DDL statements applied (empty when the schema was already current).

    Raises:
        InvalidArgument: The scheme is unknown or the URL malformed.
        Unavailable: The backend cannot be reached.
    """
    if url.startswith("sqlite://"):
        from lro_server.storage.sqlite_open import open_sqlite_store

        # Opening a SQLite store migrates it (in one transaction, safe against a
        # concurrent opener); keep what that applied.
        store = open_sqlite_store(url)
        await store.close()
        return store.schema_changes
    if url.startswith("spanner://"):
        from lro_server.storage.spanner_schema import migrate

        if retention_days is None:
            return await migrate(url)
        return await migrate(url, retention_days=retention_days)
    raise _unsupported(url)


def _unsupported(url: str) -> InvalidArgument:
    # Only the scheme is echoed: a URL may carry credentials.
    shown = url.split("://", 1)[0] + "://" if "://" in url else repr(url)
    return InvalidArgument(
        f"unsupported store URL {shown}: use one of {', '.join(SCHEMES)}",
        reason="UNSUPPORTED_STORE",
        metadata={"field": "store"},
    )
