"""terraform/ agrees with the code it deploys: schema, workflow source, settings names."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from terraform_config import ROOT, TERRAFORM_DIR, expression, is_block

from lro_server.cli.settings import Settings
from lro_server.storage import spanner_schema

SERVICES = ("api", "http")
#: Environment variables the server needs in production, on both services.
REQUIRED_ENV = {
    "LRO_STORE",
    "LRO_RETENTION_DAYS",
    "LRO_GRPC_PORT",
    "LRO_HTTP_PORT",
    "LRO_WAITER",
    "LRO_WORKFLOW",
    "LRO_AUTH",
    "LRO_AUTH_AUDIENCE",
    "LRO_ALLOWED_PRINCIPALS",
    "LRO_WAITER_PRINCIPALS",
    "LRO_PAGE_TOKEN_KEY",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
}
#: Read by the Databricks SDK rather than by Settings.
DATABRICKS_ENV = {"DATABRICKS_HOST", "DATABRICKS_TOKEN"}
#: Must come from Secret Manager, never from a plain value.
SECRET_ENV = {"DATABRICKS_TOKEN", "LRO_PAGE_TOKEN_KEY"}

# The one place terraform reads the DDL (spanner.tf); this test evaluates exactly this.
SCHEMA_DDL_EXPRESSION = (
    '[for statement in split(";", templatefile(local.schema_file, '
    "{retention_days = var.retention_days})) : trimspace(statement) "
    'if trimspace(statement) != ""]'
)


def _expr(value: Any) -> str:
    """The expression of an interpolated value; fails on a literal."""
    found = expression(value)
    assert found is not None, f"expected an expression, got the literal {value!r}"
    return found


def _module_path(value: str) -> Path:
    """Resolve a "${path.module}/..." string the way terraform does."""
    assert value.startswith("${path.module}/"), value
    return (TERRAFORM_DIR / value.removeprefix("${path.module}/")).resolve()


def _terraform_schema_ddl(template: str, retention_days: int) -> list[str]:
    """terraform's templatefile() + split(";") + trimspace() + filter, in Python."""
    placeholders = set(re.findall(r"(?<!\$)\$\{([^}]*)\}", template))
    assert placeholders <= {"retention_days"}, f"templatefile() would fail on {placeholders}"
    assert "%{" not in template, "templatefile() would read %{ as a directive"
    rendered = re.sub(r"(?<!\$)\$\{retention_days\}", str(retention_days), template)
    rendered = rendered.replace("$${", "${")
    return [s.strip() for s in rendered.split(";") if s.strip()]


# --- the schema ---


def test_schema_source_is_the_single_ddl_file(tf) -> None:
    assert _module_path(tf.locals["schema_file"]) == ROOT / "lro_server/storage/spanner_schema.sql"
    assert _module_path(tf.locals["descriptors_file"]) == (
        ROOT / "lro_server/_proto/operation_descriptors.pb"
    )
    # The descriptors terraform hashes are the ones migrate sends.
    descriptors = _module_path(tf.locals["descriptors_file"]).read_bytes()
    assert descriptors == spanner_schema.proto_descriptors()


@pytest.mark.parametrize("retention_days", [1, 30, 365])
def test_terraform_renders_the_ddl_migrate_applies(tf, retention_days: int) -> None:
    assert " ".join(_expr(tf.locals["schema_ddl"]).split()) == SCHEMA_DDL_EXPRESSION
    template = _module_path(tf.locals["schema_file"]).read_text()
    assert _terraform_schema_ddl(template, retention_days) == spanner_schema.ddl_statements(
        retention_days
    )


def test_migration_job_runs_lro_server_migrate_on_the_database(tf) -> None:
    job = tf.resource("google_cloud_run_v2_job", "migrate")
    (container,) = job["template"][0]["template"][0]["containers"]
    assert container["image"] == "${var.image}"
    assert container["command"] == ["lro-server"]
    assert container["args"] == ["migrate"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["LRO_STORE"] == "${local.store_url}"
    assert env["LRO_RETENTION_DAYS"] == "${tostring(var.retention_days)}"
    assert set(env) - DATABRICKS_ENV <= {f"LRO_{name.upper()}" for name in Settings.model_fields}
    # The schema is applied by migrate only: a `ddl` argument would be a second writer.
    assert "ddl" not in tf.resource("google_spanner_database", "lro")
    assert tf.locals["store_url"] == "spanner://${local.database_path}"


def test_migration_reruns_when_schema_descriptors_or_image_change(tf) -> None:
    run = tf.resource("terraform_data", "migrate")
    triggers = run["triggers_replace"]
    assert "local.schema_ddl" in triggers["schema"]
    assert triggers["descriptors"] == "${filesha256(local.descriptors_file)}"
    assert triggers["image"] == "${var.image}"
    (provisioner,) = run["provisioner"]
    command = provisioner["local-exec"]["command"]
    assert command.startswith("gcloud run jobs execute ${google_cloud_run_v2_job.migrate.name} ")
    assert command.endswith(" --wait")
    # Servers start only once the schema is there.
    for name in SERVICES:
        assert (
            "${terraform_data.migrate}"
            in tf.resource("google_cloud_run_v2_service", name)["depends_on"]
        )


# --- the workflow ---


def test_workflow_source_is_the_tested_yaml_file(tf) -> None:
    workflow = tf.resource("google_workflows_workflow", "waiter")
    match = re.fullmatch(r'file\("(?P<path>[^"]+)"\)', _expr(workflow["source_contents"]))
    assert match, workflow["source_contents"]
    assert _module_path(match["path"]) == ROOT / "workflows/operation_waiter.yaml"
    assert workflow["user_env_vars"] == {"LRO_GATEWAY_URL": "${local.http_url}"}
    assert workflow["service_account"] == "${google_service_account.workflow.id}"


def test_workflow_source_file_exists() -> None:
    source = ROOT / "workflows/operation_waiter.yaml"
    if not source.exists():
        # Written with the Cloud Workflows waiter; until then `terraform plan` fails on file().
        pytest.skip("workflows/operation_waiter.yaml does not exist yet")
    assert source.is_file()
    assert "LRO_GATEWAY_URL" in source.read_text(), "the workflow must read the injected URL"


def test_servers_start_the_workflow_terraform_deploys(tf) -> None:
    assert tf.locals["server_env"]["LRO_WORKFLOW"] == "${local.workflow_id}"
    assert tf.locals["workflow_id"] == (
        "projects/${var.project_id}/locations/${var.region}/workflows/${local.workflow_name}"
    )
    assert tf.resource("google_workflows_workflow", "waiter")["name"] == "${local.workflow_name}"
    assert tf.resource("google_workflows_workflow", "waiter")["region"] == "${var.region}"


# --- the servers' settings ---


def _service_env(tf, name: str) -> tuple[dict[str, Any], set[str]]:
    """Plain environment (name -> value) and secret-backed names of one service."""
    (container,) = tf.resource("google_cloud_run_v2_service", name)["template"][0]["containers"]
    plain: dict[str, Any] = {}
    secret: set[str] = set()
    for block in container.get("env", []):
        if "value_source" in block:
            secret.add(block["name"])
        else:
            plain[block["name"]] = block["value"]
    for dynamic in container.get("dynamic", []):
        spec = dynamic["env"]
        (content,) = spec["content"]
        maps = re.findall(r"local\.(\w+)", _expr(spec["for_each"]))
        assert maps, spec["for_each"]
        for local_name in maps:
            values = tf.locals[local_name]
            assert isinstance(values, dict), f"local.{local_name} must be a literal map"
            for key, value in values.items():
                if key.startswith("__"):
                    continue
                if is_block(content.get("value_source")):
                    secret.add(key)
                else:
                    plain[key] = value
    return plain, secret


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_terraform_sets_is_a_settings_field(tf, service: str) -> None:
    plain, secret = _service_env(tf, service)
    fields = {f"LRO_{name.upper()}" for name in Settings.model_fields}
    unknown = {n for n in set(plain) | secret if n not in fields and n not in DATABRICKS_ENV}
    assert not unknown, f"{service}: not read by Settings: {sorted(unknown)}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_production_setting_is_set(tf, service: str) -> None:
    plain, secret = _service_env(tf, service)
    assert not set(plain) & secret
    assert REQUIRED_ENV - set(plain) - secret == set()
    assert secret == SECRET_ENV, "secrets must come from Secret Manager"
    assert plain["LRO_WAITER"] == "workflows"
    assert plain["LRO_AUTH"] == "true"


@pytest.mark.parametrize(
    ("service", "port_setting", "port_name", "audience"),
    [
        ("api", "LRO_GRPC_PORT", "h2c", "${local.api_url}"),
        ("http", "LRO_HTTP_PORT", "http1", "${local.http_url}"),
    ],
)
def test_each_service_serves_its_front_on_the_cloud_run_port(
    tf, service: str, port_setting: str, port_name: str, audience: str
) -> None:
    plain, _ = _service_env(tf, service)
    (container,) = tf.resource("google_cloud_run_v2_service", service)["template"][0]["containers"]
    (port,) = container["ports"]
    assert port["name"] == port_name
    assert port["container_port"] == "${local.container_port}"
    assert plain[port_setting] == "${tostring(local.container_port)}"
    assert plain["LRO_AUTH_AUDIENCE"] == audience
    assert container["args"] == ["serve"]


def _literal_env(tf, service: str) -> dict[str, str]:
    plain, _ = _service_env(tf, service)
    values = {k: v for k, v in plain.items() if k.startswith("LRO_") and expression(v) is None}
    port = next(k for k, v in plain.items() if v == "${tostring(local.container_port)}")
    values[port] = str(tf.locals["container_port"])
    return values


@pytest.mark.parametrize("service", SERVICES)
def test_literal_settings_are_valid_values(tf, service: str, monkeypatch) -> None:
    values = _literal_env(tf, service)
    for key in list(os.environ):
        if key.startswith("LRO_"):
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    try:
        Settings()
    except ValidationError as exc:
        pytest.fail(f"{service}: Settings rejects {values}: {exc}")
