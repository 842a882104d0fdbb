"""SerializedOperations: bytes reused only for the very message they came from, bounded."""

from __future__ import annotations

from google.longrunning import operations_pb2

from lro_server.api.answers import RequestNames, SerializedOperations


def _operation(n: int, *, done: bool = False, size: int = 0) -> operations_pb2.Operation:
    operation = operations_pb2.Operation(name=f"operations/{n}", done=done)
    if size:
        operation.error.message = "x" * size
    return operation


def test_the_same_message_is_answered_with_the_bytes_kept_for_it() -> None:
    kept = SerializedOperations()
    operation = _operation(1)
    first = kept.of("operations/1", operation)
    assert first == operation.SerializeToString()
    assert kept.of("operations/1", operation) is first  # not serialized again


def test_another_message_under_the_same_name_is_serialized_afresh() -> None:
    kept = SerializedOperations()
    kept.of("operations/1", _operation(1))
    changed = _operation(1, done=True)
    assert kept.of("operations/1", changed) == changed.SerializeToString()
    # An equal message that is not the same object is never taken on trust either.
    equal = _operation(1, done=True)
    assert kept.of("operations/1", equal) == equal.SerializeToString()
    assert len(kept) == 1


def test_the_oldest_go_first_beyond_the_bounds() -> None:
    kept = SerializedOperations(entries=3)
    operations = [_operation(n) for n in range(5)]
    for n, operation in enumerate(operations):
        kept.of(f"operations/{n}", operation)
    assert len(kept) == 3
    assert kept.of("operations/4", operations[4]) == operations[4].SerializeToString()

    by_size = SerializedOperations(max_bytes=16_000)  # at most 1,000 bytes an entry
    for n in range(20):
        by_size.of(f"operations/{n}", _operation(n, size=900))
    assert 0 < by_size.size_bytes <= 16_000
    assert 10 < len(by_size) < 20
    count = len(by_size)
    big = _operation(99, size=1_000)
    assert by_size.of("operations/99", big) == big.SerializeToString()
    assert len(by_size) == count  # over a sixteenth of the bound: never kept

    nothing = SerializedOperations(entries=0)
    assert nothing.of("operations/1", _operation(1)) == _operation(1).SerializeToString()
    assert len(nothing) == 0


def test_request_names_are_kept_by_their_bytes_and_bounded() -> None:
    names = RequestNames(entries=2)
    raw = operations_pb2.GetOperationRequest(name="operations/1").SerializeToString()
    assert names.get(raw) is None
    names.keep(raw, "operations/1")
    assert names.get(raw) == "operations/1"
    for n in (2, 3):  # the third one starts the memo again: only it is kept
        other = operations_pb2.GetOperationRequest(name=f"operations/{n}").SerializeToString()
        names.keep(other, f"operations/{n}")
    assert len(names) == 1
    assert names.get(raw) is None

    nothing = RequestNames(entries=0)
    nothing.keep(raw, "operations/1")
    assert nothing.get(raw) is None

    # A large request (its name padded with unknown fields) is parsed each time, not kept.
    large = raw + b"\x92\x01\x80\x04" + b"x" * 512  # field 18, 512 bytes
    assert operations_pb2.GetOperationRequest.FromString(large).name == "operations/1"
    names.keep(large, "operations/1")
    assert names.get(large) is None
