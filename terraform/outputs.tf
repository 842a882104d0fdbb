output "grpc_url" {
  description = "URL of the gRPC API service; clients connect to its host on port 443 (TLS) and use this URL as the ID token audience."
  value       = local.api_url
}

output "grpc_target" {
  description = "gRPC target for clients (host:443)."
  value       = "${trimprefix(local.api_url, "https://")}:443"
}

output "http_url" {
  description = "URL of the HTTP/JSON front (internal ingress: reachable from Workflows and the project's VPC)."
  value       = local.http_url
}

output "workflow_id" {
  description = "Full resource name of the waiter workflow (LRO_WORKFLOW)."
  value       = google_workflows_workflow.waiter.id
}

output "database_path" {
  description = "Full resource name of the Spanner database (LRO_STORE without its spanner:// scheme)."
  value       = local.database_path
}

output "migrate_job" {
  description = "Cloud Run job that applies the schema: gcloud run jobs execute <this> --region <region> --wait."
  value       = google_cloud_run_v2_job.migrate.name
}

output "service_accounts" {
  description = "Emails of the service accounts, by role."
  value = {
    server   = google_service_account.server.email
    workflow = google_service_account.workflow.email
    migrate  = google_service_account.migrate.email
  }
}
