"""Chain children's request ids name their parent and step, and nothing else parses."""

from __future__ import annotations

import pytest

from lro_server.core.names import new_operation_name
from lro_server.resume.chain import child_request_id, parent_of


def test_round_trip():
    parent = new_operation_name()
    assert parent_of(child_request_id(parent, 7)) == (parent, 7)


@pytest.mark.parametrize("request_id", ["", "nightly-1", "chain-", "chain-abc", "chain--x"])
def test_other_request_ids_name_no_parent(request_id):
    assert parent_of(request_id) is None


def test_a_durable_childs_request_id_names_its_parent() -> None:
    from lro_server.resume.durable_activation import durable_parent

    parent = "operations/0b3c4d5e-0000-4000-8000-000000000001"
    assert durable_parent(f"durable-{parent.removeprefix('operations/')}-12") == parent
    for other in ("", "chain-x-1", "durable-", "durable-abc", "durable-abc-x", "durable--3"):
        assert durable_parent(other) is None
