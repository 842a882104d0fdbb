# Schema migration: a Cloud Run job running `lro-server migrate` from the same image as the
# servers, so the DDL applied is the project's single source
# (lro_server/storage/spanner_schema.sql) with its proto descriptors
# (lro_server/_proto/operation_descriptors.pb), through the same code path developers use.
# terraform apply runs it (gcloud, local-exec) whenever the rendered schema, the
# descriptors or the image change, before the servers are updated.
resource "google_cloud_run_v2_job" "migrate" {
  name     = local.migrate_job_name
  location = var.region
  labels   = var.labels

  # Stateless: the job is recreated from this file.
  deletion_protection = false

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.migrate.email
      max_retries     = 1
      timeout         = "900s"

      containers {
        image   = var.image
        command = ["lro-server"]
        args    = ["migrate"]

        env {
          name  = "LRO_STORE"
          value = local.store_url
        }

        env {
          name  = "LRO_RETENTION_DAYS"
          value = tostring(var.retention_days)
        }

        env {
          name  = "LRO_LOG_FORMAT"
          value = "json"
        }

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "terraform_data" "migrate" {
  count = var.run_migrations ? 1 : 0

  triggers_replace = {
    schema      = sha256(join(";\n", local.schema_ddl))
    descriptors = filesha256(local.descriptors_file)
    image       = var.image
    database    = local.database_path
  }

  provisioner "local-exec" {
    command = "gcloud run jobs execute ${google_cloud_run_v2_job.migrate.name} --project=${var.project_id} --region=${var.region} --wait"
  }

  depends_on = [
    google_spanner_database.lro,
    google_spanner_database_iam_member.migrate,
    google_spanner_instance_iam_member.migrate_viewer,
  ]
}
