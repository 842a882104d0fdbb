"""The transport's query encoding: what the SDK would put on the wire."""

from __future__ import annotations

from lro_server.databricks.transport import _query


def test_booleans_numbers_nested_objects_and_lists_are_sent_as_the_sdk_sends_them() -> None:
    query = {
        "active_only": True,
        "completed_only": False,
        "limit": 25,
        "filter_by": {"user_ids": [1, 2]},
    }
    assert _query(query) == [
        ("active_only", "true"),
        ("completed_only", "false"),
        ("limit", "25"),
        ("filter_by.user_ids", "1"),
        ("filter_by.user_ids", "2"),
    ]


def test_no_query_sends_no_parameters() -> None:
    assert _query(None) is None
    assert _query({}) is None
