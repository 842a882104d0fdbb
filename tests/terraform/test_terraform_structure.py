"""terraform/ against the committed google provider schema: names, required arguments, references.

This is the offline stand-in for `terraform validate`, which needs the provider binary.
terraform/schema/google_provider_subset.json comes from scripts/extract_provider_schema.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from terraform_config import expression, is_block, strings

#: Meta-arguments terraform accepts in every resource or data block.
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle"}
#: Meta blocks of resources only.
RESOURCE_META_BLOCKS = {"provisioner", "connection"}
#: terraform's built-in resource types (no provider; their schema is fixed by terraform).
BUILTIN_RESOURCES: dict[str, dict[str, Any]] = {
    "terraform_data": {
        "arguments": {"input": {"required": False}, "triggers_replace": {"required": False}},
        "blocks": {},
        "attributes": ["id", "input", "output", "triggers_replace"],
    },
}
VARIABLE_KEYS = {"description", "type", "default", "validation", "sensitive", "nullable"}
OUTPUT_KEYS = {"description", "value", "sensitive", "depends_on", "precondition"}

_REFERENCE = re.compile(
    r"(?<![\w.\"])(?:"
    r"var\.(?P<var>\w+)"
    r"|local\.(?P<local>\w+)"
    r"|data\.(?P<data_type>\w+)\.(?P<data_name>\w+)(?:\[[^\]]*\])?(?:\.(?P<data_attr>\w+))?"
    r"|(?P<res_type>google_\w+|terraform_data)\.(?P<res_name>\w+)(?:\[[^\]]*\])?"
    r"(?:\.(?P<res_attr>\w+))?"
    r")"
)


def _type_schema(provider_schema: dict[str, Any], kind: str, type_name: str) -> dict[str, Any]:
    if kind == "resource" and type_name in BUILTIN_RESOURCES:
        return BUILTIN_RESOURCES[type_name]
    schema = provider_schema[kind].get(type_name)
    if schema is None:
        pytest.fail(
            f"{kind} type {type_name} is not in terraform/schema/google_provider_subset.json: "
            "run scripts/extract_provider_schema.py"
        )
    return dict(schema)


def _check_body(
    body: dict[str, Any], schema: dict[str, Any], where: str, meta: set[str]
) -> list[str]:
    """Problems of one block body against its schema (recursively)."""
    problems: list[str] = []
    present: set[str] = set()
    for key, value in body.items():
        if key.startswith("__") or key in meta:
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    if label.startswith("__"):
                        continue
                    present.add(label)
                    nested = schema["blocks"].get(label)
                    if nested is None:
                        problems.append(f"{where}: dynamic block {label!r} is not a block")
                        continue
                    if "for_each" not in spec or not is_block(spec.get("content")):
                        problems.append(f"{where}: dynamic {label!r} needs for_each and content")
                        continue
                    for content in spec["content"]:
                        problems += _check_body(content, nested, f"{where}.{label}", set())
        elif is_block(value):
            present.add(key)
            nested = schema["blocks"].get(key)
            if nested is None:
                problems.append(f"{where}: {key!r} is not a block of this type")
                continue
            for item in value:
                problems += _check_body(item, nested, f"{where}.{key}", set())
        else:
            present.add(key)
            if key not in schema["arguments"]:
                kind = "a block, not an argument" if key in schema["blocks"] else "unknown"
                problems.append(f"{where}: argument {key!r} is {kind}")
    for kind in ("arguments", "blocks"):
        for name, spec in schema[kind].items():
            if spec["required"] and name not in present:
                problems.append(f"{where}: required {kind[:-1]} {name!r} is missing")
    return problems


def test_every_resource_matches_the_provider_schema(tf, provider_schema) -> None:
    problems: list[str] = []
    for (type_name, name), body in tf.resources.items():
        schema = _type_schema(provider_schema, "resource", type_name)
        meta = META_ARGUMENTS | RESOURCE_META_BLOCKS
        problems += _check_body(body, schema, f"{type_name}.{name}", meta)
    assert not problems, "\n".join(problems)


def test_every_data_source_matches_the_provider_schema(tf, provider_schema) -> None:
    problems: list[str] = []
    for (type_name, name), body in tf.data.items():
        schema = _type_schema(provider_schema, "data", type_name)
        problems += _check_body(body, schema, f"data.{type_name}.{name}", META_ARGUMENTS)
    assert not problems, "\n".join(problems)


def test_provider_block_matches_the_provider_schema(tf, provider_schema) -> None:
    assert set(tf.providers) == {"google"}
    problems = _check_body(
        tf.providers["google"], provider_schema["provider"]["google"], "provider.google", set()
    )
    assert not problems, "\n".join(problems)


def test_provider_pin_matches_the_schema_version(tf, provider_schema) -> None:
    (required,) = [
        block["required_providers"][0]["google"]
        for block in tf.settings
        if "required_providers" in block
    ]
    assert required["source"] == provider_schema["provider_release"]["source"] == "hashicorp/google"
    version = provider_schema["provider_release"]["version"]
    # "~> X.Y.Z" admits X.Y.*: the schema (X.Y.Z) is what the checks ran against.
    match = re.fullmatch(r"~>\s*(\d+)\.(\d+)\.(\d+)", required["version"])
    assert match, f"pin google with '~> X.Y.Z', not {required['version']!r}"
    assert version.split(".")[:2] == [match[1], match[2]], (
        f"provider pinned at {required['version']} but the schema subset is {version}: "
        "run scripts/extract_provider_schema.py with the matching package version"
    )


def _references(tf) -> list[tuple[str, re.Match[str]]]:
    found = []
    for file_name, doc in tf.files.items():
        for text in strings(doc):
            if "${" not in text:
                continue
            found += [(file_name, m) for m in _REFERENCE.finditer(text)]
    return found


def test_every_reference_resolves(tf, provider_schema) -> None:
    problems = []
    references = _references(tf)
    assert len(references) > 50, "the reference scanner found too little: is it broken?"
    for file_name, ref in references:
        text = ref.group(0)
        if ref["var"] and ref["var"] not in tf.variables:
            problems.append(f"{file_name}: {text}: no such variable")
        elif ref["local"] and ref["local"] not in tf.locals:
            problems.append(f"{file_name}: {text}: no such local")
        elif ref["data_type"]:
            key = (ref["data_type"], ref["data_name"])
            if key not in tf.data:
                problems.append(f"{file_name}: {text}: no such data source")
            elif ref["data_attr"] and ref["data_attr"] not in _type_schema(
                provider_schema, "data", key[0]
            ).get("attributes", []):
                problems.append(f"{file_name}: {text}: {key[0]} has no attribute")
        elif ref["res_type"]:
            key = (ref["res_type"], ref["res_name"])
            if key not in tf.resources:
                problems.append(f"{file_name}: {text}: no such resource")
            elif ref["res_attr"] and ref["res_attr"] not in _type_schema(
                provider_schema, "resource", key[0]
            ).get("attributes", []):
                problems.append(f"{file_name}: {text}: {key[0]} has no such attribute")
    assert not problems, "\n".join(problems)


def test_every_variable_has_a_description_and_a_type(tf) -> None:
    assert tf.variables
    for name, body in tf.variables.items():
        keys = {k for k in body if not k.startswith("__")}
        assert keys <= VARIABLE_KEYS, f"variable {name}: unexpected {keys - VARIABLE_KEYS}"
        assert str(body.get("description", "")).strip(), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"


def test_every_variable_is_used(tf) -> None:
    used = {m["var"] for _, m in _references(tf) if m["var"]}
    assert set(tf.variables) - used == set()


def test_every_output_has_a_description(tf) -> None:
    assert {"grpc_url", "http_url", "workflow_id", "database_path"} <= set(tf.outputs)
    for name, body in tf.outputs.items():
        keys = {k for k in body if not k.startswith("__")}
        assert keys <= OUTPUT_KEYS, f"output {name}: unexpected {keys - OUTPUT_KEYS}"
        assert str(body.get("description", "")).strip(), f"output {name} has no description"
        assert "value" in body, f"output {name} has no value"


def test_no_primitive_roles_and_no_public_members(tf) -> None:
    forbidden = re.compile(r"roles/(owner|editor|viewer)\b|allUsers|allAuthenticatedUsers")
    for file_name, doc in tf.files.items():
        if file_name == "variables.tf":
            continue  # the api_invokers validation message names what it rejects
        for text in strings(doc):
            assert not forbidden.search(text), f"{file_name}: {text}"


def test_iam_grants_are_exactly_the_least_privilege_set(tf) -> None:
    grants = set()
    for (type_name, name), body in tf.resources.items():
        if type_name.endswith("_iam_member"):
            member = expression(body["member"]) or body["member"]
            grants.add((type_name, name, body["role"], member))
        assert not type_name.endswith(("_iam_binding", "_iam_policy")), (
            f"{type_name}.{name}: authoritative IAM would remove grants made elsewhere"
        )
    server = "google_service_account.server.member"
    workflow = "google_service_account.workflow.member"
    assert grants == {
        ("google_spanner_database_iam_member", "server", "roles/spanner.databaseUser", server),
        (
            "google_spanner_database_iam_member",
            "migrate",
            "roles/spanner.databaseUser",
            "google_service_account.migrate.member",
        ),
        (
            "google_spanner_instance_iam_member",
            "migrate_viewer",
            "roles/spanner.viewer",
            "google_service_account.migrate.member",
        ),
        (
            "google_secret_manager_secret_iam_member",
            "server",
            "roles/secretmanager.secretAccessor",
            server,
        ),
        (
            "google_project_iam_member",
            "server_workflows_invoker",
            "roles/workflows.invoker",
            server,
        ),
        ("google_project_iam_member", "workflow_log_writer", "roles/logging.logWriter", workflow),
        ("google_cloud_run_v2_service_iam_member", "http_workflow", "roles/run.invoker", workflow),
        (
            "google_cloud_run_v2_service_iam_member",
            "api_clients",
            "roles/run.invoker",
            "each.value",
        ),
    }
    # Each grant is on the one resource it is about.
    for name in ("server", "migrate"):
        body = tf.resource("google_spanner_database_iam_member", name)
        assert body["database"] == "${google_spanner_database.lro.name}"
    assert tf.resource("google_secret_manager_secret_iam_member", "server")["for_each"] == (
        "${local.server_secrets}"
    )
    assert tf.resource("google_cloud_run_v2_service_iam_member", "http_workflow")["name"] == (
        "${google_cloud_run_v2_service.http.name}"
    )
    assert tf.resource("google_cloud_run_v2_service_iam_member", "api_clients")["name"] == (
        "${google_cloud_run_v2_service.api.name}"
    )


def test_database_is_protected_from_deletion(tf) -> None:
    body = tf.resource("google_spanner_database", "lro")
    assert body["deletion_protection"] is True
    assert body["enable_drop_protection"] is True


def test_services_ingress_and_scaling_are_deliberate(tf) -> None:
    api = tf.resource("google_cloud_run_v2_service", "api")
    http = tf.resource("google_cloud_run_v2_service", "http")
    assert api["ingress"] == "${var.api_ingress}"
    assert http["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    for body in (api, http):
        template = body["template"][0]
        assert template["scaling"][0].keys() >= {"min_instance_count", "max_instance_count"}
        assert "max_instance_request_concurrency" in template
        assert template["service_account"] == "${google_service_account.server.email}"
        # The tracker runs between requests: CPU must stay allocated.
        assert template["containers"][0]["resources"][0]["cpu_idle"] is False
