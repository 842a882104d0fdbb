"""Generate docs/api.md, the API reference of protos/, from the compiled descriptors.

protoc (grpcio-tools) compiles protos/ with source info, so the reference carries the
comments written in the .proto files; services list each method's request, its operation's
response and metadata types (google.longrunning.operation_info). tests/unit/test_api_docs.py
fails when docs/api.md differs from what this script renders.

Usage: python scripts/gen_api_docs.py [--check]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from google.longrunning import operations_pb2
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from gen_protos import PROTOS, _includes  # noqa: E402  (scripts are not a package)

DOC = ROOT / "docs" / "api.md"
_SCALARS = {
    number: name.removeprefix("TYPE_").lower()
    for name, number in descriptor_pb2.FieldDescriptorProto.Type.items()
}
# Paths inside a FileDescriptorProto (descriptor.proto field numbers) for comments.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM, _VALUE, _METHOD = 2, 3, 4, 2, 2


def compile_protos() -> descriptor_pb2.FileDescriptorSet:
    """Our .proto files compiled with comments (imports excluded)."""
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as shim, tempfile.TemporaryDirectory() as out:
        target = Path(out) / "api.pb"
        args = [
            "protoc",
            *_includes(Path(shim)),
            "--include_source_info",
            f"--descriptor_set_out={target}",
            *sources,
        ]
        if protoc.main(args) != 0:
            sys.exit("protoc failed")
        files = descriptor_pb2.FileDescriptorSet.FromString(target.read_bytes())
    return files


def _comments(proto: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    found = {}
    for location in proto.source_code_info.location:
        text = location.leading_comments.strip()
        if text:
            found[tuple(location.path)] = " ".join(line.strip() for line in text.splitlines())
    return found


#: Our enums (their headings, and so their anchors, start with "enum").
_ENUMS: set[str] = set()
#: Map entry messages → their key and value fields (rendered as map<K, V>).
_MAPS: dict[str, tuple[descriptor_pb2.FieldDescriptorProto, ...]] = {}


def _anchor(full_name: str) -> str:
    prefix = "enum-" if full_name in _ENUMS else ""
    return prefix + full_name.lower().replace(".", "")


def _link(name: str, ours: set[str]) -> str:
    return f"[`{name.rsplit('.', 1)[-1]}`](#{_anchor(name)})" if name in ours else f"`{name}`"


def _type(field: descriptor_pb2.FieldDescriptorProto, ours: set[str]) -> str:
    name = field.type_name.lstrip(".")
    if name in _MAPS:
        key, value = _MAPS[name]
        return f"map<{_type(key, ours)}, {_type(value, ours)}>".replace("`", "")
    text = _link(name, ours) if name else f"`{_SCALARS[field.type]}`"
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        text = f"repeated {text}"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(files: descriptor_pb2.FileDescriptorSet) -> str:
    """docs/api.md for ``files``."""
    ours: set[str] = set()
    for proto in files.file:

        def collect(prefix: str, messages: list[descriptor_pb2.DescriptorProto]) -> None:
            for message in messages:
                full = f"{prefix}.{message.name}"
                if message.options.map_entry:
                    _MAPS[full] = tuple(message.field)
                    continue
                ours.add(full)
                collect(full, list(message.nested_type))
                _ENUMS.update(f"{full}.{e.name}" for e in message.enum_type)

        collect(proto.package, list(proto.message_type))
        _ENUMS.update(f"{proto.package}.{e.name}" for e in proto.enum_type)
    ours |= _ENUMS

    out = [
        "# API reference",
        "",
        "Generated from `protos/` by `python scripts/gen_api_docs.py`; do not edit by hand.",
        "Every method that starts work returns a `google.longrunning.Operation` at once; follow",
        "it with `google.longrunning.Operations` (Get, List, Wait, Cancel, Delete). The",
        "operation's `metadata` and `response` have the types listed with each method.",
        "",
    ]
    for proto in sorted(files.file, key=lambda f: f.name):
        comments = _comments(proto)
        out += [f"## {proto.name}", ""]
        for si, service in enumerate(proto.service):
            full = f"{proto.package}.{service.name}"
            out += [f"### service {full}", "", comments.get((_SERVICE, si), ""), ""]
            out += ["| method | request | operation response | metadata | description |"]
            out += ["|---|---|---|---|---|"]
            for mi, method in enumerate(service.method):
                info = method.options.Extensions[operations_pb2.operation_info]
                request = method.input_type.lstrip(".")
                response = info.response_type or method.output_type.lstrip(".")
                row = [
                    f"`{method.name}`",
                    _link(request, ours),
                    _qualified(response, proto.package, ours),
                    _qualified(info.metadata_type, proto.package, ours)
                    if info.metadata_type
                    else "",
                    _cell(comments.get((_SERVICE, si, _METHOD, mi), "")),
                ]
                out.append("| " + " | ".join(row) + " |")
            out.append("")
        _messages(
            out,
            proto.package,
            list(proto.message_type),
            path=(_MESSAGE,),
            comments=comments,
            ours=ours,
        )
        for ei, enum in enumerate(proto.enum_type):
            _enum(out, f"{proto.package}.{enum.name}", enum, (_ENUM, ei), comments)
    return "\n".join(out).rstrip() + "\n"


def _qualified(name: str, package: str, ours: set[str]) -> str:
    full = name if "." in name else f"{package}.{name}"
    return _link(full, ours)


def _messages(
    out: list[str],
    prefix: str,
    messages: list[descriptor_pb2.DescriptorProto],
    *,
    path: tuple[int, ...],
    comments: dict[tuple[int, ...], str],
    ours: set[str],
) -> None:
    for index, message in enumerate(messages):
        if message.options.map_entry:
            continue
        full = f"{prefix}.{message.name}"
        here = (*path, index)
        out += [f"### {full}", "", comments.get(here, ""), ""]
        if message.field:
            out += ["| field | type | number | description |", "|---|---|---|---|"]
            for fi, field in enumerate(message.field):
                description = _cell(comments.get((*here, _FIELD, fi), ""))
                out.append(
                    f"| `{field.name}` | {_type(field, ours)} | {field.number} | {description} |"
                )
            out.append("")
        for ei, enum in enumerate(message.enum_type):
            _enum(out, f"{full}.{enum.name}", enum, (*here, _NESTED_ENUM, ei), comments)
        _messages(
            out,
            full,
            list(message.nested_type),
            path=(*here, _NESTED),
            comments=comments,
            ours=ours,
        )


def _enum(
    out: list[str],
    full: str,
    enum: descriptor_pb2.EnumDescriptorProto,
    path: tuple[int, ...],
    comments: dict[tuple[int, ...], str],
) -> None:
    out += [f"### enum {full}", "", comments.get(path, ""), ""]
    out += ["| value | number | description |", "|---|---|---|"]
    for vi, value in enumerate(enum.value):
        description = _cell(comments.get((*path, _VALUE, vi), ""))
        out.append(f"| `{value.name}` | {value.number} | {description} |")
    out.append("")


def main() -> None:
    """Write docs/api.md, or with --check exit 1 when it is stale."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is stale")
    args = parser.parse_args()
    text = render(compile_protos())
    if args.check:
        if DOC.read_text() != text:
            sys.exit("docs/api.md is stale: run python scripts/gen_api_docs.py")
        return
    DOC.write_text(text)


if __name__ == "__main__":
    main()
