# Names and URLs every file agrees on. The Cloud Run URLs are computed (Cloud Run's
# deterministic https://SERVICE-PROJECT_NUMBER.REGION.run.app form) rather than read from
# the services, because each server must know its own URL as the audience of the ID tokens
# it verifies, and a resource cannot refer to its own attributes. A postcondition on each
# service checks at apply time that Cloud Run did assign that URL.
locals {
  api_service_name  = "${var.name_prefix}-api"
  http_service_name = "${var.name_prefix}-http"
  migrate_job_name  = "${var.name_prefix}-migrate"
  workflow_name     = "${var.name_prefix}-operation-waiter"

  api_url  = "https://${local.api_service_name}-${data.google_project.this.number}.${var.region}.run.app"
  http_url = "https://${local.http_service_name}-${data.google_project.this.number}.${var.region}.run.app"

  # Known before the workflow exists, so that the servers (which start its executions) and
  # the workflow (which calls the HTTP front) do not depend on each other.
  workflow_id = "projects/${var.project_id}/locations/${var.region}/workflows/${local.workflow_name}"

  # Cloud Run sends requests to this port; each front listens on it (see run.tf).
  container_port = 8080
}
