"""Ids that go into Databricks URL paths: real ids pass, anything that could change the
path (found by the fuzz test as ``No API found for 'POST /api/2.0/sql/warehouses/O\\r n'``)
is INVALID_ARGUMENT."""

from __future__ import annotations

import pytest

from lro_server.core.errors import InvalidArgument
from lro_server.databricks.paths import path_id


@pytest.mark.parametrize(
    "value",
    ["1234567890abcdef", "0123-456789-abcde123", "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "x_y.z~1"],
)
def test_databricks_ids_pass(value):
    assert path_id(value, "id") == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "..",
        "../../jobs/runs/cancel",
        "a/b",
        "a?b=1",
        "a#b",
        "a%2Fb",
        "O\r n",
        " a",
        "a b",
        ".hidden",
        "a..b",
        "é",
        "x" * 200,
        "-a",
    ],
)
def test_anything_that_could_change_the_path_is_refused(value):
    with pytest.raises(InvalidArgument) as caught:
        path_id(value, "pipeline_id")
    assert caught.value.metadata == {"field": "pipeline_id"}
