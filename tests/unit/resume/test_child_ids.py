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
