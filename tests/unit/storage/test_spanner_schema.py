"""The Spanner DDL file, the migration planner, store URLs and error translation (no emulator)."""

from __future__ import annotations

import re

import pytest
from google.api_core import exceptions as gexc
from google.protobuf import descriptor_pb2

from lro_server.core.errors import FailedPrecondition, Internal, InvalidArgument, Unavailable
from lro_server.core.filter import parse
from lro_server.core.store import ListQuery
from lro_server.storage.spanner_client import parse_spanner_url, translated
from lro_server.storage.spanner_schema import (
    ddl_statements,
    ddl_text,
    plan_migration,
    proto_descriptors,
)
from lro_server.storage.spanner_sql import list_query

# --- the DDL file, as terraform's templatefile() will read it ------------------------------


def test_retention_days_is_the_only_placeholder() -> None:
    raw = ddl_text().replace("INTERVAL 30 DAY", "INTERVAL ${retention_days} DAY")

    assert set(re.findall(r"\$\{(\w+)\}", raw)) == {"retention_days"}
    assert "${" not in ddl_text(7)
    assert "INTERVAL 7 DAY" in ddl_text(7)


def test_a_plain_split_on_semicolons_gives_the_statements() -> None:
    # What terraform does: split(";", ...), trimspace, drop empties. No comments to strip.
    text = ddl_text()
    naive = [part.strip() for part in text.split(";") if part.strip()]

    assert naive == ddl_statements()
    assert "--" not in text
    assert all(s.startswith("CREATE ") for s in naive)


def test_retention_must_be_positive() -> None:
    with pytest.raises(InvalidArgument):
        ddl_statements(0)


def test_the_descriptor_set_defines_every_bundled_type() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(proto_descriptors()).file
    defined = {f"{f.package}.{m.name}" for f in files for m in f.message_type}

    bundle = ddl_statements()[0]
    listed = re.findall(r"[\w.]+\.[A-Z]\w*", bundle)
    assert set(listed) == {
        "google.longrunning.Operation",
        "google.rpc.Status",
        "google.protobuf.Any",
    }
    assert set(listed) <= defined


# --- the planner ------------------------------------------------------------------------------


def test_an_empty_database_gets_everything() -> None:
    assert plan_migration(ddl_statements(), []) == ddl_statements()


def test_a_current_database_gets_nothing() -> None:
    assert plan_migration(ddl_statements(), ddl_statements()) == []


def test_spanners_own_layout_of_the_same_schema_counts_as_current() -> None:
    # As GetDatabaseDdl prints it: backticks, other spacing, options on several lines.
    live = [
        re.sub(r"\s+", " ", s)
        .replace(
            "Operation google.longrunning.Operation", "Operation `google.longrunning.Operation`"
        )
        .replace("PRIMARY KEY (key)", "PRIMARY KEY(key)")
        for s in ddl_statements()
    ]

    assert plan_migration(ddl_statements(), live) == []


def test_missing_index_and_bundle_type_are_added() -> None:
    live = [s for s in ddl_statements() if "OperationsClaimable" not in s]
    live[0] = "CREATE PROTO BUNDLE (google.longrunning.Operation, google.rpc.Status)"

    plan = plan_migration(ddl_statements(), live)

    assert plan[0] == "ALTER PROTO BUNDLE INSERT (`google.protobuf.Any`)"
    assert plan[1].startswith("CREATE NULL_FILTERED INDEX OperationsClaimable")
    assert len(plan) == 2


def test_changed_descriptors_update_the_bundle() -> None:
    ours = proto_descriptors()
    changed = descriptor_pb2.FileDescriptorSet.FromString(ours)
    for file in changed.file:
        for message in file.message_type:
            if f"{file.package}.{message.name}" == "google.rpc.Status":
                message.field.pop()

    plan = plan_migration(
        ddl_statements(),
        ddl_statements(),
        existing_descriptors=changed.SerializeToString(),
        descriptors=ours,
    )

    assert plan == [
        "ALTER PROTO BUNDLE UPDATE (google.longrunning.Operation, google.rpc.Status, "
        "`google.protobuf.Any`)"
    ]
    assert (
        plan_migration(
            ddl_statements(), ddl_statements(), existing_descriptors=ours, descriptors=ours
        )
        == []
    )


# --- URLs and errors ------------------------------------------------------------------------


def test_store_urls_parse() -> None:
    url = parse_spanner_url("spanner://projects/my-proj/instances/lro-1/databases/ops_db")

    assert (url.project, url.instance, url.database) == ("my-proj", "lro-1", "ops_db")
    assert str(url) == "spanner://projects/my-proj/instances/lro-1/databases/ops_db"


@pytest.mark.parametrize(
    "url",
    [
        "spanner://projects/p/instances/i/databases/d",  # ids too short
        "spanner://projects/proj/instances/inst/databases/",
        "spanner://proj/inst/db",
        "sqlite:///x.db",
        "spanner://projects/proj/instances/inst/databases/db/extra",
    ],
)
def test_bad_store_urls_are_invalid_arguments(url: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_spanner_url(url)


@pytest.mark.parametrize(
    ("raised", "expected", "text"),
    [
        (gexc.ServiceUnavailable("down"), Unavailable, "down"),
        (gexc.DeadlineExceeded("slow"), Unavailable, "slow"),
        (gexc.Aborted("contention"), Unavailable, "contention"),
        (ConnectionResetError("reset"), Unavailable, "reset"),
        (gexc.NotFound("Database not found: projects/x"), Unavailable, "lro-server migrate"),
        (gexc.InvalidArgument("Table not found: Operations"), Unavailable, "lro-server migrate"),
        (gexc.PermissionDenied("no role"), FailedPrecondition, "no role"),
        (gexc.InvalidArgument("Syntax error"), Internal, "Syntax error"),
    ],
)
def test_spanner_errors_translate_in_one_place(
    raised: Exception, expected: type[Exception], text: str
) -> None:
    with pytest.raises(expected, match=text) as caught, translated("projects/p"):
        raise raised

    assert caught.value.__cause__ is raised


def test_core_errors_pass_through_untouched() -> None:
    error = FailedPrecondition("done")

    with pytest.raises(FailedPrecondition) as caught, translated("projects/p"):
        raise error

    assert caught.value is error


# --- listing queries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "owner", "index"),
    [
        ("", None, "OperationsByCreateTime"),
        ("", "alice", "OperationsByOwnerCreateTime"),
        ("done = false", None, "OperationsUnfinishedByCreateTime"),
        ('done = false AND metadata.state = "X"', "alice", "OperationsUnfinishedByOwnerCreateTime"),
        ('done = false OR metadata.state = "RUNNING"', None, "OperationsByCreateTime"),
        ("NOT done = true", None, "OperationsByCreateTime"),
        ("done = true", None, "OperationsByCreateTime"),
    ],
)
def test_listings_that_require_unfinished_operations_read_their_index(
    text: str, owner: str | None, index: str
) -> None:
    query = ListQuery(filter=parse(text), owner=owner, after=None, limit=5)

    sql, params = list_query(query)

    assert f"FORCE_INDEX={index}," in sql
    assert f"INDEX {index} ON" in ddl_text()
    # Cloud Spanner reads a NULL_FILTERED index only when the query excludes its NULLs.
    assert ("unfinished_create_time_us IS NOT NULL" in sql) == ("Unfinished" in index)
    assert params["limit"] == 5
