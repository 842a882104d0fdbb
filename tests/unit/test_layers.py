"""Dependencies point inward: each layer imports only what the architecture allows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lro_server"

#: What only the server installs, and the server's own layers.
_SERVER_ONLY = (
    "lro_server.core",
    "lro_server.api",
    "lro_server.http",
    "lro_server.cli",
    "lro_server.storage",
    "lro_server.databricks",
    "lro_server.resume",
    "lro_server.testing",
    "databricks",
    "aiohttp",
    "pydantic",
    "pydantic_settings",
    "rich",
    "google.cloud",
    "grpc_status",
    "grpc_health",
    "grpc_reflection",
    "prometheus_client",
    "uvloop",
    "sqlite3",
)

#: layer → import prefixes it must never use. ``grpc`` is allowed where a gRPC-based client
#: (Spanner, Cloud Workflows executions) raises grpc.RpcError that the layer translates.
FORBIDDEN = {
    "core": (
        "grpc",
        "sqlite3",
        "google.cloud",
        "databricks",
        "aiohttp",
        "lro_server.api",
        "lro_server.http",
        "lro_server.cli",
        "lro_server.storage",
        "lro_server.databricks",
        "lro_server.resume",
        "lro_server._proto",
    ),
    "storage": (
        "databricks",
        "aiohttp",
        "lro_server.api",
        "lro_server.http",
        "lro_server.cli",
        "lro_server.databricks",
        "lro_server.resume",
    ),
    # aiohttp's client is the Databricks REST transport (see the test below).
    "databricks": (
        "grpc",
        "sqlite3",
        "google.cloud",
        "aiohttp.web",
        "lro_server.api",
        "lro_server.http",
        "lro_server.cli",
        "lro_server.storage",
        "lro_server.resume",
    ),
    "resume": ("sqlite3", "databricks", "lro_server.http", "lro_server.cli"),
    # The public API of durable methods: what user code imports, and nothing of the server.
    "durable": (
        "grpc",
        "google",
        "sqlite3",
        "databricks",
        "aiohttp",
        "lro_server.core",
        "lro_server.api",
        "lro_server.http",
        "lro_server.cli",
        "lro_server.storage",
        "lro_server.databricks",
        "lro_server.resume",
        "lro_server._proto",
    ),
    "http": ("grpc", "sqlite3", "databricks", "lro_server.cli", "lro_server.storage"),
    "api": ("sqlite3", "databricks.sdk", "lro_server.cli", "lro_server.storage"),
    # The public client and messages install without the server's dependencies
    # (`lro-server[client]`: grpcio, protobuf, googleapis-common-protos, google-api-core).
    "client": _SERVER_ONLY,
    "v1": _SERVER_ONLY,
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_inward(layer: str) -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert offences == []


def test_one_module_of_the_databricks_layer_speaks_http() -> None:
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "databricks").rglob("*.py")
        if any(name == "aiohttp" or name.startswith("aiohttp.") for name in _imports(path))
    )
    assert users == ["databricks/transport.py"]


def test_only_the_databricks_layer_uses_the_sdk() -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if "databricks" not in path.relative_to(PACKAGE).parts[:1]
        for name in _imports(path)
        if name == "databricks" or name.startswith("databricks.")
    ]
    assert offences == []


# SQL keywords and functions the stores' statements are made of (outside docstrings).
_SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|IS NOT NULL|IS NULL|STARTS_WITH|STRPOS)\b"
    r"|\b(substr|instr|length)\("
)


def _sql_strings(path: Path) -> list[str]:
    """String literals (f-string parts included) of ``path`` that look like SQL."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and _SQL.search(node.value)
    ]


def test_core_holds_no_sql() -> None:
    # Dialects, filter-to-SQL and keyset conditions belong to storage/.
    offences = {
        str(path.relative_to(PACKAGE.parent)): found
        for path in sorted((PACKAGE / "core").rglob("*.py"))
        if (found := _sql_strings(path))
    }
    assert offences == {}
    assert _sql_strings(PACKAGE / "storage" / "filter_sql.py")  # the check sees SQL
