"""Extract the subset of the google provider schema that terraform/ uses, for offline checks.

`terraform validate` needs the provider binary, which cannot be downloaded everywhere the
tests run. The same schema is published on PyPI inside the prebuilt CDK for Terraform
bindings (`cdktf-cdktf-provider-google`): its wheel carries a jsii assembly (`.jsii`, JSON)
generated from the provider's own schema, with every argument, whether it is required, and
every nested block. This script downloads that wheel (`pip download --no-deps`: it is never
installed), reads the assembly and writes, for each resource and data source type that
terraform/*.tf uses, its arguments (required or optional), its exported attributes and its
nested blocks, recursively, plus the provider block's own arguments, to
terraform/schema/google_provider_subset.json.

Run it again after adding a resource type to terraform/ or after changing the provider pin
in terraform/versions.tf (pick the package version whose README names that provider
version):

    .venv/bin/python scripts/extract_provider_schema.py [--package-version 16.12.1]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM_DIR = ROOT / "terraform"
OUTPUT = TERRAFORM_DIR / "schema" / "google_provider_subset.json"
PACKAGE = "cdktf-cdktf-provider-google"
#: 16.12.1 is the last release; it is built from hashicorp/google 6.50.0.
DEFAULT_PACKAGE_VERSION = "16.12.1"

_REGISTRY_LINK = re.compile(
    r"registry\.terraform\.io/providers/hashicorp/google/(?P<version>[^/]+)/docs/"
    r"(?P<kind>resources|data-sources)/(?P<name>[a-z0-9_]+)(?:#(?P<anchor>[a-z0-9_]+))?"
)
_FQN_PREFIX = "@cdktf/provider-google."
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def download_wheel(version: str, dest: Path) -> Path:
    """Download (never install) the bindings wheel into ``dest`` and return its path."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            f"{PACKAGE}=={version}",
            "--dest",
            str(dest),
        ],
        check=True,
    )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {dest}, found {wheels}")
    return wheels[0]


def read_assembly(wheel: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the jsii assembly and package.json held in the wheel's jsii tarball."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            raise SystemExit(f"expected one .jsii.tgz in {wheel.name}, found {names}")
        blob = zf.read(names[0])
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        assembly = _read_json_member(tf, "package/.jsii")
        package_json = _read_json_member(tf, "package/package.json")
    return assembly, package_json


def _read_json_member(tf: tarfile.TarFile, name: str) -> dict[str, Any]:
    member = tf.extractfile(name)
    if member is None:
        raise SystemExit(f"{name} missing from the jsii tarball")
    data: dict[str, Any] = json.load(member)
    return data


def used_types(terraform_dir: Path) -> tuple[set[str], set[str]]:
    """Resource and data source types of the google provider used in terraform_dir/*.tf."""
    resources: set[str] = set()
    data_sources: set[str] = set()
    for path in sorted(terraform_dir.glob("*.tf")):
        with path.open() as fh:
            doc = hcl2.load(fh)
        for key, target in (("resource", resources), ("data", data_sources)):
            for block in doc.get(key, []):
                target.update(t.strip('"') for t in block if t.strip('"').startswith("google_"))
    return resources, data_sources


def _index_classes(types: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Map (resources|data-sources, terraform type name) to the jsii class representing it."""
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for spec in types.values():
        if spec.get("kind") != "class":
            continue
        summary = spec.get("docs", {}).get("summary", "")
        if not summary.startswith("Represents a {@link"):
            continue
        match = _REGISTRY_LINK.search(summary)
        if match:
            index[(match["kind"], "google_" + match["name"])] = spec
    return index


def _terraform_name(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    for text in (docs.get("remarks", ""), docs.get("summary", "")):
        match = _REGISTRY_LINK.search(text)
        if match and match["anchor"]:
            return str(match["anchor"])
    return _CAMEL.sub("_", prop["name"]).lower()


def _block_fqn(type_ref: dict[str, Any]) -> str | None:
    """The struct type of a nested block, or None when the property is a plain argument."""
    if "fqn" in type_ref:
        fqn = str(type_ref["fqn"])
        return fqn if fqn.startswith(_FQN_PREFIX) else None
    if "collection" in type_ref:
        return _block_fqn(type_ref["collection"]["elementtype"])
    if "union" in type_ref:
        for option in type_ref["union"]["types"]:
            found = _block_fqn(option)
            if found:
                return found
    return None


def _struct_schema(types: dict[str, Any], fqn: str) -> dict[str, Any]:
    arguments: dict[str, dict[str, bool]] = {}
    blocks: dict[str, dict[str, Any]] = {}
    for prop in types[fqn].get("properties", []):
        name = _terraform_name(prop)
        required = not prop.get("optional", False)
        nested = _block_fqn(prop["type"])
        if nested is None:
            arguments[name] = {"required": required}
        else:
            blocks[name] = {"required": required, **_struct_schema(types, nested)}
    return {
        "arguments": dict(sorted(arguments.items())),
        "blocks": dict(sorted(blocks.items())),
    }


def _exported(spec: dict[str, Any]) -> list[str]:
    """Every attribute a reference may read: the class getters, minus the *Input twins."""
    names = {
        _CAMEL.sub("_", p["name"]).lower()
        for p in spec.get("properties", [])
        if not p.get("static") and not p["name"].endswith("Input")
    }
    return sorted(names)


def type_schema(types: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Arguments, exported attributes and blocks of one resource or data source class."""
    config_fqn = spec["fqn"] + "Config"
    schema = _struct_schema(types, config_fqn)
    schema["attributes"] = sorted(set(_exported(spec)) | set(schema["arguments"]))
    return schema


def extract(
    assembly: dict[str, Any], resources: set[str], data_sources: set[str]
) -> dict[str, Any]:
    """Build the committed subset for the given types."""
    types = assembly["types"]
    index = _index_classes(types)
    out: dict[str, dict[str, Any]] = {"provider": {}, "resource": {}, "data": {}}
    provider = types[f"{_FQN_PREFIX}provider.GoogleProvider"]
    out["provider"]["google"] = _struct_schema(types, provider["fqn"] + "Config")
    for kind, key, wanted in (
        ("resources", "resource", resources),
        ("data-sources", "data", data_sources),
    ):
        for name in sorted(wanted):
            spec = index.get((kind, name))
            if spec is None:
                raise SystemExit(f"{kind[:-1]} {name} is not in {PACKAGE} {assembly['version']}")
            out[key][name] = type_schema(types, spec)
    return out


def main(argv: list[str] | None = None) -> int:
    """Download the bindings, extract the schema subset and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-version", default=DEFAULT_PACKAGE_VERSION)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    resources, data_sources = used_types(TERRAFORM_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(args.package_version, Path(tmp))
        assembly, package_json = read_assembly(wheel)
    provider = package_json.get("cdktf", {}).get("provider", {})
    subset = {
        "comment": "Generated by scripts/extract_provider_schema.py; do not edit by hand.",
        "provider_release": {
            "source": str(provider.get("name", "")).removeprefix("registry.terraform.io/"),
            "version": provider.get("version"),
        },
        "extracted_from": {
            "package": PACKAGE,
            "version": assembly["version"],
            "assembly_fingerprint": assembly.get("fingerprint"),
        },
        **extract(assembly, resources, data_sources),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n")
    count = len(subset["resource"]) + len(subset["data"])
    print(f"wrote {args.output.relative_to(ROOT)}: {count} types, provider {provider}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
