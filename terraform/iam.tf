# One service account per role, each with only what it needs:
#   server   - Spanner database user on the one database, secret accessor on the two
#              secrets (secrets.tf), workflows invoker (starts waiter executions).
#   workflow - run.invoker on the HTTP front only (+ log writer when call logging is on).
#   migrate  - Spanner database user on the one database (getDdl and updateDdl are part of
#              it), viewer on the instance (migrate looks the instance up first).
# Clients get run.invoker on the API service only. No primitive roles, no public members.

resource "google_service_account" "server" {
  account_id   = "${var.name_prefix}-server"
  display_name = "lro-server (API and HTTP front)"
  description  = "Runs both lro-server Cloud Run services."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "workflow" {
  account_id   = "${var.name_prefix}-workflow"
  display_name = "lro-server waiter workflow"
  description  = "Identity of the waiter workflow when it calls the HTTP front."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "migrate" {
  account_id   = "${var.name_prefix}-migrate"
  display_name = "lro-server schema migration"
  description  = "Runs lro-server migrate against the operations database."

  depends_on = [google_project_service.this]
}

# --- Spanner: read/write and schema updates on this database only ---

resource "google_spanner_database_iam_member" "server" {
  project  = var.project_id
  instance = local.spanner_instance
  database = google_spanner_database.lro.name
  role     = "roles/spanner.databaseUser"
  member   = google_service_account.server.member
}

resource "google_spanner_database_iam_member" "migrate" {
  project  = var.project_id
  instance = local.spanner_instance
  database = google_spanner_database.lro.name
  role     = "roles/spanner.databaseUser"
  member   = google_service_account.migrate.member
}

# `lro-server migrate` checks that the instance exists (spanner.instances.get) before it
# reads and updates the schema; the viewer role reads metadata only, never data.
resource "google_spanner_instance_iam_member" "migrate_viewer" {
  project  = var.project_id
  instance = local.spanner_instance
  role     = "roles/spanner.viewer"
  member   = google_service_account.migrate.member
}

# --- Workflows: the server starts executions of the waiter ---
# Workflows has no per-workflow IAM policy (its roles are granted on the project), so this
# grant covers every workflow of the project: deploy into a project of its own where that
# matters.
resource "google_project_iam_member" "server_workflows_invoker" {
  project = var.project_id
  role    = "roles/workflows.invoker"
  member  = google_service_account.server.member
}

# Workflows writes call logs with the workflow's own identity.
resource "google_project_iam_member" "workflow_log_writer" {
  count = var.workflow_call_log_level == "LOG_NONE" ? 0 : 1

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.workflow.member
}

# --- Cloud Run: who may call which service ---

resource "google_cloud_run_v2_service_iam_member" "http_workflow" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.http.name
  role     = "roles/run.invoker"
  member   = google_service_account.workflow.member
}

resource "google_cloud_run_v2_service_iam_member" "api_clients" {
  for_each = toset(var.api_invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker"
  member   = each.value
}
