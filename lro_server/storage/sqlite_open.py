"""Opening the SQLite store from its ``sqlite://`` URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lro_server.core.clock import Clock
from lro_server.core.errors import InvalidArgument, Unavailable
from lro_server.storage.sqlite import SqliteStore

#: URL scheme of this backend.
SCHEME = "sqlite"


def open_sqlite_store(url: str, clock: Clock | None = None, **options: Any) -> SqliteStore:
    """Open the store named by a ``sqlite://`` URL, creating parent directories.

    ``sqlite:///var/lro.db`` is relative to the working directory, ``sqlite:////srv/lro.db``
    absolute, ``sqlite://`` or ``sqlite:///:memory:`` an in-memory database.
    ``options`` go to :class:`SqliteStore` (e.g. ``busy_timeout``).

    Raises:
        InvalidArgument: The URL is not a valid sqlite URL.
        Unavailable: The directory or file cannot be created or opened.
    """
    path = sqlite_path(url)
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create the directory of {path}: {exc}") from exc
    return SqliteStore(path, clock, **options)


def sqlite_path(url: str) -> str:
    """The file path (or ``":memory:"``) a ``sqlite://`` URL names."""
    prefix = SCHEME + "://"
    if not url.startswith(prefix):
        raise _bad_url(url, "it must start with sqlite://")
    rest = url[len(prefix) :]
    if rest in ("", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise _bad_url(url, "a host is not allowed; use sqlite:///relative or sqlite:////abs")
    if "?" in rest or "#" in rest:
        raise _bad_url(url, "query strings and fragments are not supported")
    path = rest[1:]
    if not path or path.endswith("/"):
        raise _bad_url(url, "it names no file")
    return path


def _bad_url(url: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"bad SQLite store URL {url!r}: {why}", metadata={"field": "store"})
