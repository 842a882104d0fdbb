"""Generate lro_server/_proto from protos/, the Spanner proto descriptor set, and the
published descriptor set protos/descriptor_set.pb.

The output is committed. tests/unit/test_generated_code.py runs this into a temporary
directory and fails when the result differs from what is committed.

protos/descriptor_set.pb is for clients generated in other languages: our protos and every
file they, google.longrunning and the google.rpc error details import, so that each
``@type`` the server puts in an ``Any`` (metadata, responses, ``Operation.error.details``)
can be resolved from it alone (docs/clients.md).

Usage: python scripts/gen_protos.py [--out DIR] [--descriptor-set FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import google.api  # googleapis-common-protos ships the .proto sources next to the modules
import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = "lro_server._proto"
OUT = ROOT / "lro_server" / "_proto"
# Descriptor set of google.longrunning.Operation for Spanner's CREATE PROTO BUNDLE.
DESCRIPTORS = "operation_descriptors.pb"
#: The published descriptor set (see the module docstring).
PUBLISHED = PROTOS / "descriptor_set.pb"
#: What the published set holds besides our own protos (with everything they import).
PUBLISHED_EXTRA = (
    "google/longrunning/operations.proto",
    "google/rpc/status.proto",
    "google/rpc/code.proto",
    "google/rpc/error_details.proto",
)


def _includes(shim: Path) -> list[str]:
    common = Path(google.api.__path__[0]).parent.parent
    builtin = Path(grpc_tools.__file__).parent / "_proto"
    # googleapis-common-protos ships google/longrunning/operations.proto as
    # operations_proto.proto, while its Python module registers the canonical name;
    # expose it under the canonical path so imports resolve to operations_pb2.
    longrunning = shim / "google" / "longrunning"
    longrunning.mkdir(parents=True)
    shutil.copyfile(
        common / "google/longrunning/operations_proto.proto", longrunning / "operations.proto"
    )
    return [f"-I{PROTOS}", f"-I{shim}", f"-I{common}", f"-I{builtin}"]


def _run(args: list[str]) -> None:
    if protoc.main(["protoc", *args]) != 0:
        sys.exit(f"protoc failed: {' '.join(args)}")


def publish(path: Path) -> None:
    """Write the published descriptor set (our protos, google.rpc details and imports)."""
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    shim = Path(tempfile.mkdtemp())
    try:
        _run(
            [
                *_includes(shim),
                "--include_imports",
                f"--descriptor_set_out={path}",
                *sources,
                *PUBLISHED_EXTRA,
            ]
        )
    finally:
        shutil.rmtree(shim)


def generate(out: Path) -> None:
    """Write the generated package (and descriptor set) into ``out``."""
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    tmp = Path(tempfile.mkdtemp())
    shim = Path(tempfile.mkdtemp())
    try:
        includes = _includes(shim)
        bindir = Path(sys.executable).parent
        _run(
            [
                *includes,
                f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
                f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
                f"--python_out={tmp}",
                f"--grpc_python_out={tmp}",
                f"--mypy_out={tmp}",
                f"--mypy_grpc_out={tmp}",
                *sources,
            ]
        )
        _run(
            [
                *includes,
                "--include_imports",
                f"--descriptor_set_out={tmp / DESCRIPTORS}",
                "google/longrunning/operations.proto",
            ]
        )
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for path in sorted(tmp.rglob("*")):
            if path.is_dir():
                continue
            target = out / path.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix in (".py", ".pyi"):
                text = path.read_text()
                # Our generated modules import each other as top-level `lro.*`; anchor them
                # under lro_server._proto so no sys.path tricks are needed.
                text = re.sub(r"^from lro\.", f"from {PACKAGE}.lro.", text, flags=re.M)
                text = re.sub(r"^import lro\.", f"import {PACKAGE}.lro.", text, flags=re.M)
                target.write_text(text)
            else:
                shutil.copyfile(path, target)
        for directory in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
            (directory / "__init__.py").touch()
    finally:
        shutil.rmtree(tmp)
        shutil.rmtree(shim)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--descriptor-set", type=Path, default=PUBLISHED)
    args = parser.parse_args()
    generate(args.out)
    publish(args.descriptor_set)


if __name__ == "__main__":
    main()
