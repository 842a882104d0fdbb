"""Databricks SDK errors → core errors: missing entities are NOT_FOUND however they are said."""

from __future__ import annotations

import pytest
from databricks.sdk import errors as dbx

from lro_server.core import errors as core
from lro_server.databricks.errors import translate


def _error(cls: type[dbx.DatabricksError], code: str, message: str) -> dbx.DatabricksError:
    return cls(message, error_code=code)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        # jobs/run-now, clusters/start...: Databricks' 400 for an id that does not exist.
        (
            _error(dbx.InvalidParameterValue, "INVALID_PARAMETER_VALUE", "Job 123 does not exist."),
            core.NotFound,
        ),
        (
            _error(
                dbx.InvalidParameterValue,
                "INVALID_PARAMETER_VALUE",
                "Cluster 0101-x does not exist",
            ),
            core.NotFound,
        ),
        (
            _error(
                dbx.InvalidParameterValue,
                "INVALID_PARAMETER_VALUE",
                "Run: 5 in job: 6 doesn't exist",
            ),
            core.NotFound,
        ),
        (
            _error(
                dbx.BadRequest,
                "RESOURCE_DOES_NOT_EXIST",
                "The specified pipeline p-1 was not found.",
            ),
            core.NotFound,
        ),
        # The same entities answered 404 (newer APIs, SQL warehouses, pipelines).
        (
            _error(dbx.ResourceDoesNotExist, "RESOURCE_DOES_NOT_EXIST", "Job 123 does not exist."),
            core.NotFound,
        ),
        (
            _error(
                dbx.ResourceDoesNotExist, "RESOURCE_DOES_NOT_EXIST", "Warehouse abc does not exist."
            ),
            core.NotFound,
        ),
        # Other 400s stay bad requests, even when they say "not found" about something else.
        (
            _error(
                dbx.InvalidParameterValue,
                "INVALID_PARAMETER_VALUE",
                "Missing required field: job_id",
            ),
            core.InvalidArgument,
        ),
        (
            _error(
                dbx.InvalidParameterValue,
                "INVALID_PARAMETER_VALUE",
                "Tasks not found in run 5: ['x']",
            ),
            core.InvalidArgument,
        ),
        (
            _error(dbx.BadRequest, "MALFORMED_REQUEST", "Job settings are invalid"),
            core.InvalidArgument,
        ),
        (
            _error(dbx.InvalidState, "INVALID_STATE", "Run 5 is still active."),
            core.FailedPrecondition,
        ),
        (KeyError("no idea"), core.Internal),
    ],
)
def test_translate(exc: BaseException, expected: type[core.LroError]) -> None:
    error = translate(exc)
    assert type(error) is expected
    if expected is not core.Internal:
        assert error.message == str(exc)  # Databricks' own words
        assert error.metadata["databricks_error_code"] == getattr(exc, "error_code", "")
