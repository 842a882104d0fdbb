# The two Cloud Run services, one image:
# - api:  the gRPC API (h2c end to end), for clients; LRO_HTTP_PORT=-1 turns the HTTP front off.
# - http: the HTTP/JSON front that Cloud Workflows calls; internal ingress only (Workflows
#         in the same project counts as internal when it calls the run.app URL).
# Each sets the port Cloud Run sends traffic to explicitly (LRO_GRPC_PORT or LRO_HTTP_PORT =
# container_port) rather than relying on $PORT. The http service's gRPC port (50051) is not
# exposed by Cloud Run; it stays on because the server always serves gRPC.
# Both keep CPU allocated and at least one instance by default: the tracker follows
# Databricks work between requests, and leases move work between replicas.
locals {
  # Settings both services share (names are fields of lro_server.cli.settings.Settings,
  # checked by tests/terraform).
  server_env = {
    LRO_STORE              = local.store_url
    LRO_RETENTION_DAYS     = tostring(var.retention_days)
    LRO_WAITER             = "workflows"
    LRO_WORKFLOW           = local.workflow_id
    LRO_WORKFLOWS_ENDPOINT = var.workflows_endpoint
    LRO_METHODS            = var.methods
    LRO_AUTH               = "true"
    LRO_WAITER_PRINCIPALS  = jsonencode([google_service_account.workflow.email])
    LRO_ADMIN_PRINCIPALS   = jsonencode(var.admin_principals)
    LRO_LOG_LEVEL          = var.log_level
    LRO_LOG_FORMAT         = "json"
    DATABRICKS_HOST        = var.databricks_host
  }

  api_env = {
    LRO_GRPC_PORT          = tostring(local.container_port)
    LRO_HTTP_PORT          = "-1"
    LRO_AUTH_AUDIENCE      = local.api_url
    LRO_ALLOWED_PRINCIPALS = jsonencode([for member in var.api_invokers : split(":", member)[1]])
  }

  http_env = {
    LRO_HTTP_PORT          = tostring(local.container_port)
    LRO_GRPC_PORT          = "50051"
    LRO_AUTH_AUDIENCE      = local.http_url
    LRO_ALLOWED_PRINCIPALS = jsonencode([google_service_account.workflow.email])
  }

  # Environment variables read from Secret Manager: name => [secret id, version].
  server_secret_env = {
    DATABRICKS_TOKEN   = [data.google_secret_manager_secret.databricks_token.secret_id, var.databricks_token_secret_version]
    LRO_PAGE_TOKEN_KEY = [data.google_secret_manager_secret.page_token_key.secret_id, var.page_token_key_secret_version]
  }
}

resource "google_cloud_run_v2_service" "api" {
  name                = local.api_service_name
  location            = var.region
  description         = "lro-server gRPC API"
  ingress             = var.api_ingress
  labels              = var.labels
  deletion_protection = false # stateless: recreated from this file

  template {
    service_account                  = google_service_account.server.email
    max_instance_request_concurrency = var.api_concurrency
    # Longer than LRO_MAX_WAIT_SECONDS (600 s by default) so WaitOperation ends on the
    # server's own deadline, with the latest state, not on Cloud Run's.
    timeout = "900s"

    scaling {
      min_instance_count = var.api_min_instances
      max_instance_count = var.api_max_instances
    }

    containers {
      image = var.image
      args  = ["serve"]

      ports {
        name           = "h2c"
        container_port = local.container_port
      }

      dynamic "env" {
        for_each = merge(local.server_env, local.api_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.server_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value[0]
              version = env.value[1]
            }
          }
        }
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # The tracker follows Databricks work between requests: keep CPU allocated.
        cpu_idle          = false
        startup_cpu_boost = true
      }

      # gRPC health reports SERVING once the store answers. It is not a liveness probe:
      # it turns NOT_SERVING while Spanner is unreachable, and a restart would not help.
      startup_probe {
        grpc {
          port = local.container_port
        }
        period_seconds    = 2
        failure_threshold = 30
      }
    }
  }

  lifecycle {
    postcondition {
      condition     = contains(self.urls, local.api_url)
      error_message = "Cloud Run did not assign ${local.api_url}, the audience the API verifies: shorten name_prefix."
    }
  }

  depends_on = [
    google_project_service.this,
    google_secret_manager_secret_iam_member.server,
    google_spanner_database_iam_member.server,
    terraform_data.migrate,
  ]
}

resource "google_cloud_run_v2_service" "http" {
  name                = local.http_service_name
  location            = var.region
  description         = "lro-server HTTP/JSON front for Cloud Workflows"
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  labels              = var.labels
  deletion_protection = false # stateless: recreated from this file

  template {
    service_account                  = google_service_account.server.email
    max_instance_request_concurrency = var.http_concurrency
    timeout                          = "900s"

    scaling {
      min_instance_count = var.http_min_instances
      max_instance_count = var.http_max_instances
    }

    containers {
      image = var.image
      args  = ["serve"]

      ports {
        name           = "http1"
        container_port = local.container_port
      }

      dynamic "env" {
        for_each = merge(local.server_env, local.http_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.server_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value[0]
              version = env.value[1]
            }
          }
        }
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = false
        startup_cpu_boost = true
      }

      # /readyz: the store answers; /healthz: the process does (see lro_server/http/operator.py).
      startup_probe {
        http_get {
          path = "/readyz"
          port = local.container_port
        }
        period_seconds    = 2
        failure_threshold = 30
      }

      liveness_probe {
        http_get {
          path = "/healthz"
          port = local.container_port
        }
        period_seconds    = 30
        failure_threshold = 3
      }
    }
  }

  lifecycle {
    postcondition {
      condition     = contains(self.urls, local.http_url)
      error_message = "Cloud Run did not assign ${local.http_url}, the URL the workflow calls: shorten name_prefix."
    }
  }

  depends_on = [
    google_project_service.this,
    google_secret_manager_secret_iam_member.server,
    google_spanner_database_iam_member.server,
    terraform_data.migrate,
  ]
}
