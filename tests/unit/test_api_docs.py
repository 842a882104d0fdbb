"""docs/api.md is generated from protos/: fail when someone changed one without the other."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    path = ROOT / "scripts" / "gen_api_docs.py"
    spec = importlib.util.spec_from_file_location("gen_api_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_api_docs", module)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_current():
    generator = _generator()
    expected = generator.render(generator.compile_protos())
    assert (ROOT / "docs" / "api.md").read_text() == expected, (
        "docs/api.md is stale: run `python scripts/gen_api_docs.py`"
    )


def test_every_service_and_method_is_documented():
    text = (ROOT / "docs" / "api.md").read_text()
    for proto in sorted((ROOT / "protos").rglob("*.proto")):
        package = ""
        for line in proto.read_text().splitlines():
            words = line.split()
            if words[:1] == ["package"]:
                package = words[1].rstrip(";")
            if words[:1] == ["service"]:
                assert f"service {package}.{words[1]}" in text
            if words[:1] == ["rpc"]:
                assert f"| `{words[1].split('(')[0]}` |" in text
