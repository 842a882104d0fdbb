"""Loading durable methods: --methods modules and the lro_server.methods entry points (a real
dist-info on the import path), and one line for every way it can go wrong."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lro_server.cli.methods import MethodsError, load_methods

GOOD = """
from lro_server import durable

@durable.method("acme.One")
async def one(ctx, request):
    return {}

@durable.method("acme.Two")
async def two(ctx, request):
    return {}
"""


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        sys.modules.pop(name, None)


def _write(directory: Path, name: str, text: str) -> None:
    (directory / f"{name}.py").write_text(text)


def test_modules_are_imported_and_their_marked_functions_collected(modules: Path) -> None:
    _write(modules, "acme_good", GOOD)
    found = load_methods(" acme_good ", entry_points=False)
    assert [m.name for m in found] == ["acme.One", "acme.Two"]
    assert {m.module for m in found} == {"acme_good"}


def test_entry_points_name_modules_or_functions(modules: Path) -> None:
    _write(modules, "acme_ep_module", GOOD)
    _write(modules, "acme_ep_function", GOOD.replace("acme.", "other."))
    dist = modules / "acme_methods-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-methods\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[lro_server.methods]\nmodule = acme_ep_module\nfunction = acme_ep_function:two\n"
    )
    found = {m.name for m in load_methods("")}
    assert found >= {"acme.One", "acme.Two", "other.Two"}
    assert "other.One" not in found


@pytest.mark.parametrize(
    ("files", "modules_arg", "says"),
    [
        ({}, "acme_missing", "acme_missing: cannot be imported: ModuleNotFoundError"),
        (
            {"acme_broken": "raise RuntimeError('no config')"},
            "acme_broken",
            "acme_broken: cannot be imported: RuntimeError: no config",
        ),
        ({"acme_syntax": "def ("}, "acme_syntax", "acme_syntax: cannot be imported: SyntaxError"),
        ({"acme_empty": "X = 1"}, "acme_empty", "acme_empty: defines no method"),
        (
            {
                "acme_sig": "from lro_server import durable\n@durable.method('a.B')\n"
                "async def f(ctx):\n    return {}\n"
            },
            "acme_sig",
            "must take exactly (ctx, request)",
        ),
        (
            {
                "acme_sync": "from lro_server import durable\n@durable.method('a.B')\n"
                "def f(ctx, request):\n    return {}\n"
            },
            "acme_sync",
            "must be an async def",
        ),
        ({"acme_a": GOOD, "acme_b": GOOD}, "acme_a,acme_b", "acme.One is defined twice"),
    ],
)
def test_what_cannot_be_loaded_is_one_line_naming_the_module(
    modules: Path, files: dict[str, str], modules_arg: str, says: str
) -> None:
    for name, text in files.items():
        _write(modules, name, text)
    with pytest.raises(MethodsError) as caught:
        load_methods(modules_arg, entry_points=False)
    message = str(caught.value)
    assert says in message and "\n" not in message


def test_a_bad_name_is_refused_when_the_module_is_imported(modules: Path) -> None:
    _write(modules, "acme_name", GOOD.replace('"acme.One"', '"acme/One"'))
    with pytest.raises(MethodsError, match="acme_name: cannot be imported: ValueError"):
        load_methods("acme_name", entry_points=False)
