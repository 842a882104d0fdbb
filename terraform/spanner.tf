# Spanner instance (optional) and the database. The schema is applied by
# `lro-server migrate` (migrate.tf), not by the `ddl` argument: the schema holds a
# CREATE PROTO BUNDLE statement, which needs the proto descriptors sent with it, and
# google_spanner_database (provider 6.50) has no argument for them.
locals {
  spanner_instance_config = var.spanner_instance_config != "" ? var.spanner_instance_config : "regional-${var.region}"
  spanner_instance        = var.spanner_instance_name != "" ? var.spanner_instance_name : google_spanner_instance.this[0].name

  database_path = "projects/${var.project_id}/instances/${local.spanner_instance}/databases/${google_spanner_database.lro.name}"
  store_url     = "spanner://${local.database_path}"

  # The single DDL source, rendered and split exactly as the Python loader does it
  # (lro_server.storage.spanner_ddl; tests/terraform checks both agree). The migration job
  # applies it; terraform hashes it to know when to run that job again.
  schema_file      = "${path.module}/../lro_server/storage/spanner_schema.sql"
  descriptors_file = "${path.module}/../lro_server/_proto/operation_descriptors.pb"
  schema_ddl = [
    for statement in split(";", templatefile(local.schema_file, { retention_days = var.retention_days })) :
    trimspace(statement) if trimspace(statement) != ""
  ]
}

resource "google_spanner_instance" "this" {
  count = var.spanner_instance_name == "" ? 1 : 0

  name             = "${var.name_prefix}-spanner"
  display_name     = "${var.name_prefix} operations"
  config           = local.spanner_instance_config
  processing_units = var.spanner_processing_units
  labels           = var.labels
  force_destroy    = false

  depends_on = [google_project_service.this]
}

resource "google_spanner_database" "lro" {
  #checkov:skip=CKV_GCP_93:Customer-managed keys are opt-in through var.spanner_kms_key_name (the key ring is the operator's); Google-managed encryption by default.
  instance         = local.spanner_instance
  name             = var.database_name
  database_dialect = "GOOGLE_STANDARD_SQL"

  # Both guards on: terraform refuses to destroy it, and Spanner refuses to drop it (or its
  # instance) through any interface. Turn both off deliberately before a teardown.
  deletion_protection    = true
  enable_drop_protection = true

  dynamic "encryption_config" {
    for_each = var.spanner_kms_key_name == "" ? [] : [var.spanner_kms_key_name]
    content {
      kms_key_name = encryption_config.value
    }
  }

  depends_on = [google_project_service.this]
}
