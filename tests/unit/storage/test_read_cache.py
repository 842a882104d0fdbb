"""ReadCache: the LRU bound, the byte bound, and emptying when the data version moves."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server.core.record import OperationRecord
from lro_server.storage.read_cache import ReadCache


def _record(name: str) -> OperationRecord:
    return OperationRecord(operation=operations_pb2.Operation(name=name))


def test_a_hit_returns_the_kept_record_while_the_version_stands() -> None:
    cache = ReadCache(entries=2)
    assert cache.get("a", 1) is None
    record = _record("a")
    cache.put(record, 10)

    assert cache.get("a", 1) is record
    assert cache.get("b", 1) is None


def test_a_new_version_empties_it() -> None:
    cache = ReadCache(entries=2)
    cache.get("a", 1)
    cache.put(_record("a"), 10)

    assert cache.get("a", 2) is None
    assert len(cache) == 0
    assert cache.size_bytes == 0


def test_the_least_recently_used_record_goes_first() -> None:
    cache = ReadCache(entries=2)
    cache.get("a", 1)
    for name in ("a", "b"):
        cache.put(_record(name), 10)
    cache.get("a", 1)  # b is now the least recently used
    cache.put(_record("c"), 10)

    assert len(cache) == 2
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) is not None
    assert cache.get("c", 1) is not None


def test_the_byte_bound_holds_and_large_records_are_not_kept() -> None:
    cache = ReadCache(entries=100, max_bytes=1600)
    cache.get("x", 1)
    for n in range(20):
        cache.put(_record(str(n)), 100)
    cache.put(_record("large"), 101)

    assert len(cache) == 16
    assert cache.size_bytes == 1600
    assert cache.get("large", 1) is None
    assert cache.get("0", 1) is None
    assert cache.get("19", 1) is not None


def test_discard_forgets_one_record_and_its_bytes() -> None:
    cache = ReadCache(entries=4)
    cache.get("x", 1)
    cache.put(_record("a"), 10)
    cache.put(_record("b"), 20)
    cache.put(_record("a"), 30)  # replacing counts the new size only

    cache.discard("a")
    cache.discard("missing")

    assert cache.get("a", 1) is None
    assert cache.size_bytes == 20
