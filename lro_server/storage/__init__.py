"""Backends of the OperationStore port (:mod:`lro_server.core.store`) and their factory."""

from lro_server.storage.factory import SCHEMES, migrate_store, open_store
from lro_server.storage.sqlite import SqliteStore
from lro_server.storage.sqlite_open import open_sqlite_store

__all__ = ["SCHEMES", "SqliteStore", "migrate_store", "open_sqlite_store", "open_store"]
