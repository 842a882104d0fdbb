"""terraform/ parsed with python-hcl2, and the committed provider schema subset."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
SCHEMA_FILE = TERRAFORM_DIR / "schema" / "google_provider_subset.json"

_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
_INTERPOLATION = re.compile(r"^\$\{(?P<expr>.*)\}$", re.S)


def is_block(value: Any) -> bool:
    """Whether a parsed value is one or more nested blocks (not an attribute's value)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def expression(value: Any) -> str | None:
    """The expression inside ``${...}``, or None for a literal."""
    if isinstance(value, str) and (match := _INTERPOLATION.match(value)):
        return match["expr"].strip()
    return None


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed value, recursively (keys of attribute maps included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("__"):
                continue
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@dataclass
class Terraform:
    """terraform/*.tf parsed with python-hcl2, indexed by kind of top-level block."""

    files: dict[str, dict[str, Any]]
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, directory: Path) -> Terraform:
        files = {}
        for path in sorted(directory.glob("*.tf")):
            with path.open() as fh:
                files[path.name] = hcl2.load(fh, serialization_options=_OPTIONS)
        tf = cls(files)
        for doc in files.values():
            for kind, index in (("resource", tf.resources), ("data", tf.data)):
                for block in doc.get(kind, []):
                    for type_name, named in _labels(block):
                        for name, body in _labels(named):
                            assert (type_name, name) not in index, (
                                f"{kind} {type_name}.{name} twice"
                            )
                            index[(type_name, name)] = body
            for kind, by_name in (("variable", tf.variables), ("output", tf.outputs)):
                for block in doc.get(kind, []):
                    for name, body in _labels(block):
                        assert name not in by_name, f"{kind} {name} declared twice"
                        by_name[name] = body
            for block in doc.get("provider", []):
                tf.providers.update(_labels(block))
            for block in doc.get("locals", []):
                for name, value in block.items():
                    if not name.startswith("__"):
                        assert name not in tf.locals, f"local {name} declared twice"
                        tf.locals[name] = value
            tf.settings.extend(doc.get("terraform", []))
        return tf

    def resource(self, type_name: str, name: str) -> dict[str, Any]:
        """The body of one resource block."""
        return self.resources[(type_name, name)]


def _labels(block: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in block.items():
        if not key.startswith("__"):
            yield key, value


def load_schema() -> dict[str, Any]:
    """The committed subset of the google provider schema."""
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data
