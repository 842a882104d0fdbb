"""Fakes lro-server ships for tests: an in-memory store, a fake clock, a Databricks simulator."""

from lro_server.testing.memory_store import MemoryData, MemoryStore

__all__ = ["MemoryData", "MemoryStore"]
