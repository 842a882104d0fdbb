# Secrets the server reads. Both exist already (created and rotated outside terraform, so
# their values never enter the state); terraform only looks them up and grants access.
data "google_secret_manager_secret" "databricks_token" {
  project   = var.project_id
  secret_id = var.databricks_token_secret_id
}

data "google_secret_manager_secret" "page_token_key" {
  project   = var.project_id
  secret_id = var.page_token_key_secret_id
}

locals {
  server_secrets = {
    databricks_token = data.google_secret_manager_secret.databricks_token.secret_id
    page_token_key   = data.google_secret_manager_secret.page_token_key.secret_id
  }
}

resource "google_secret_manager_secret_iam_member" "server" {
  for_each = local.server_secrets

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.server.member
}
