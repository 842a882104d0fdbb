"""OperationJson: rendered once per version, exact whoever wrote, bounded."""

from __future__ import annotations

import json

import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, json_format

from lro_server.core.record import OperationRecord
from lro_server.http.json_cache import OperationJson

NAME = "operations/6f1c1a52-3d8e-4d8a-9a55-2a4f3f9a2b10"


def _operation(seconds: int, *, done: bool = False, name: str = NAME) -> operations_pb2.Operation:
    operation = operations_pb2.Operation(name=name, done=done)
    operation.metadata.Pack(duration_pb2.Duration(seconds=seconds))
    return operation


def test_renders_proto3_json() -> None:
    cache = OperationJson()
    operation = _operation(5)
    body = cache.render(operation)
    assert json.loads(body) == json.loads(json_format.MessageToJson(operation))


def test_second_read_of_the_same_version_is_a_hit() -> None:
    cache = OperationJson()
    first = cache.render(_operation(5))
    # A fresh message with equal content, as a store read produces.
    second = cache.render(operations_pb2.Operation.FromString(_operation(5).SerializeToString()))
    assert first is second
    assert (cache.hits, cache.misses) == (1, 1)


def test_changed_content_is_rendered_again_without_any_notification() -> None:
    # Another replica wrote through the shared store: no listener call here.
    cache = OperationJson()
    cache.render(_operation(5))
    body = cache.render(_operation(6, done=True))
    assert json.loads(body)["done"] is True
    assert cache.misses == 2


def test_listener_drops_the_entry_on_write_and_delete() -> None:
    cache = OperationJson()
    cache.render(_operation(5))
    cache.changed(NAME, OperationRecord(operation=_operation(6)))
    assert len(cache) == 0
    cache.render(_operation(6))
    cache.changed(NAME, None)
    assert len(cache) == 0


def test_bounded_oldest_first() -> None:
    cache = OperationJson(max_entries=2)
    names = [f"operations/6f1c1a52-3d8e-4d8a-9a55-2a4f3f9a2b1{i}" for i in range(3)]
    for name in names:
        cache.render(_operation(1, name=name))
    assert len(cache) == 2
    cache.render(_operation(1, name=names[0]))
    assert cache.misses == 4  # the first was evicted


def test_zero_entries_disables_caching() -> None:
    cache = OperationJson(max_entries=0)
    cache.render(_operation(1))
    cache.render(_operation(1))
    assert (len(cache), cache.misses) == (0, 2)


def test_the_front_uses_the_cache_it_is_given_even_while_empty() -> None:
    from lro_server.api.registry import Registry
    from lro_server.http.app import HttpFront

    cache = OperationJson()
    assert HttpFront(Registry(), operation_json=cache).operation_json is cache


def _page_operations() -> list[operations_pb2.Operation]:
    failed = _operation(7, done=True, name=NAME.replace("6f1c", "0000"))
    failed.error.code = 9
    failed.error.message = 'the input table is empty — ünïcödé "quoted" \\ </script>'
    succeeded = _operation(8, done=True, name=NAME.replace("6f1c", "1111"))
    succeeded.response.Pack(duration_pb2.Duration(seconds=1, nanos=5))
    return [_operation(5), failed, succeeded, operations_pb2.Operation(name=NAME[:-1] + "9")]


@pytest.mark.parametrize("count", [0, 1, 4])
@pytest.mark.parametrize("token", ["", "CiQ2ZjFjMWE1Mi0zZDhlLTRkOGEtOWE1NS0yYTRmM2Y5YTJiMTA="])
def test_a_page_is_byte_for_byte_what_message_to_json_gives(count: int, token: str) -> None:
    page = operations_pb2.ListOperationsResponse(
        operations=_page_operations()[:count], next_page_token=token
    )
    cache = OperationJson()
    if count:
        cache.render(page.operations[0])  # one of them cached already

    assert cache.render_page(page) == json_format.MessageToJson(page, indent=None).encode()


def test_a_page_read_again_is_all_hits() -> None:
    page = operations_pb2.ListOperationsResponse(operations=_page_operations())
    cache = OperationJson()
    first = cache.render_page(page)
    again = operations_pb2.ListOperationsResponse.FromString(page.SerializeToString())
    assert cache.render_page(again) == first
    assert (cache.hits, cache.misses) == (4, 4)
