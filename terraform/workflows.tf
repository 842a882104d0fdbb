# The waiter workflow: polls child operations through the HTTP front, then resumes the
# parent method. Its source is the file the workflow tests run (never a copy); the gateway
# URL is injected here so that a caller of the workflow cannot point the service account's
# ID token at another host.
resource "google_workflows_workflow" "waiter" {
  name            = local.workflow_name
  region          = var.region
  description     = "Waits for child operations of lro-server methods, then resumes the parent."
  service_account = google_service_account.workflow.id
  call_log_level  = var.workflow_call_log_level
  labels          = var.labels

  # Stateless: the workflow is recreated from its source file.
  deletion_protection = false

  source_contents = file("${path.module}/../workflows/operation_waiter.yaml")

  user_env_vars = {
    LRO_GATEWAY_URL = local.http_url
  }

  depends_on = [
    google_project_service.this,
    google_cloud_run_v2_service.http,
  ]
}
