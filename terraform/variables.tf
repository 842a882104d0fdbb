# Inputs of the deployment. Only project_id, image, databricks_host, the two secret ids and
# api_invokers have no default; everything else is a deliberate, documented choice.

variable "project_id" {
  description = "Google Cloud project that hosts every resource of the deployment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lower-case letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the Cloud Run services, the migration job and the workflow."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (services, job, workflow, service accounts)."
  type        = string
  default     = "lro"

  validation {
    # Service account ids are limited to 30 characters ("<prefix>-workflow" is the longest)
    # and Cloud Run only assigns the deterministic run.app URL the servers verify tokens
    # against when the service name is short.
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 characters: a lower-case letter, then letters, digits or hyphens."
  }
}

variable "labels" {
  description = "Labels added to every resource that supports them."
  type        = map(string)
  default     = { app = "lro-server" }
}

variable "enable_apis" {
  description = "Enable the Google Cloud APIs the deployment needs (left enabled on destroy)."
  type        = bool
  default     = true
}

variable "image" {
  description = "Container image of lro-server built from deploy/Dockerfile, preferably pinned by digest (REGION-docker.pkg.dev/PROJECT/REPO/lro-server@sha256:...)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(@sha256:[a-f0-9]{64}|:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$", var.image))
    error_message = "image must be a full image reference with a tag or a sha256 digest."
  }

  validation {
    condition     = !endswith(var.image, ":latest")
    error_message = "Pin the image by digest or by an immutable tag, not :latest."
  }
}

# --- Spanner ---

variable "spanner_instance_name" {
  description = "Existing Spanner instance to create the database in. Empty: create a new instance named <name_prefix>-spanner."
  type        = string
  default     = ""

  validation {
    condition     = var.spanner_instance_name == "" || can(regex("^[a-z][-a-z0-9]{0,62}[a-z0-9]$", var.spanner_instance_name))
    error_message = "spanner_instance_name must be empty or a Spanner instance id."
  }
}

variable "spanner_instance_config" {
  description = "Instance configuration of a new Spanner instance (empty: regional-<region>)."
  type        = string
  default     = ""
}

variable "spanner_processing_units" {
  description = "Compute capacity of a new Spanner instance, in processing units (1000 = one node)."
  type        = number
  default     = 100

  validation {
    condition     = (var.spanner_processing_units >= 100 && var.spanner_processing_units < 1000 && var.spanner_processing_units % 100 == 0) || (var.spanner_processing_units >= 1000 && var.spanner_processing_units % 1000 == 0)
    error_message = "spanner_processing_units must be a multiple of 100 below 1000, or a multiple of 1000."
  }
}

variable "spanner_kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) that encrypts the database; empty: Google-managed encryption. The Spanner service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = ""

  validation {
    condition     = var.spanner_kms_key_name == "" || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.spanner_kms_key_name))
    error_message = "spanner_kms_key_name must be empty or a full Cloud KMS crypto key name."
  }
}

variable "database_name" {
  description = "Name of the Spanner database holding the operations."
  type        = string
  default     = "lro"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,28}[a-z0-9]$", var.database_name))
    error_message = "database_name must be 2-30 characters: [a-z][a-z0-9_-]*[a-z0-9]."
  }
}

variable "retention_days" {
  description = "Days a done operation is kept before Spanner's row deletion policy removes it (LRO_RETENTION_DAYS)."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 1 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days, at least 1."
  }
}

variable "run_migrations" {
  description = "Run the schema migration job (`lro-server migrate`) from terraform apply with gcloud whenever the schema, the descriptors or the image change. Set false where gcloud is not available and run the job by hand (docs/deploy.md)."
  type        = bool
  default     = true
}

# --- Databricks and secrets ---

variable "databricks_host" {
  description = "Databricks workspace URL (DATABRICKS_HOST), e.g. https://adb-123.4.azuredatabricks.net."
  type        = string

  validation {
    condition     = can(regex("^https://[^/\\s]+/?$", var.databricks_host))
    error_message = "databricks_host must be an https:// URL without a path."
  }
}

variable "databricks_token_secret_id" {
  description = "Id of an existing Secret Manager secret, in project_id, holding the Databricks token (DATABRICKS_TOKEN). Terraform never reads or writes its value."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.databricks_token_secret_id))
    error_message = "databricks_token_secret_id must be a secret id (not a full resource name)."
  }
}

variable "databricks_token_secret_version" {
  description = "Version of the Databricks token secret to mount; pin a number to roll out rotations deliberately."
  type        = string
  default     = "latest"
}

variable "page_token_key_secret_id" {
  description = "Id of an existing Secret Manager secret, in project_id, holding the HMAC key that signs page tokens (LRO_PAGE_TOKEN_KEY); every replica must share it."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.page_token_key_secret_id))
    error_message = "page_token_key_secret_id must be a secret id (not a full resource name)."
  }
}

variable "page_token_key_secret_version" {
  description = "Version of the page token key secret to mount."
  type        = string
  default     = "latest"
}

# --- Who may call ---

variable "api_invokers" {
  description = "Identities allowed to call the gRPC API, as IAM members: user:EMAIL or serviceAccount:EMAIL. They get roles/run.invoker on the API service, and their emails become LRO_ALLOWED_PRINCIPALS, which the server checks on every call."
  type        = list(string)

  validation {
    # Groups and domains would pass Cloud Run IAM but never match the email in an ID token,
    # which the server checks against the same list.
    condition     = alltrue([for m in var.api_invokers : can(regex("^(user|serviceAccount):[^@\\s]+@[^@\\s]+$", m))])
    error_message = "api_invokers entries must be user:EMAIL or serviceAccount:EMAIL (no groups, domains, allUsers or allAuthenticatedUsers)."
  }
}

variable "admin_principals" {
  description = "Emails that see every owner's operations (LRO_ADMIN_PRINCIPALS). They must also be in api_invokers to reach the API."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.admin_principals : can(regex("^[^:@\\s]+@[^@\\s]+$", e))])
    error_message = "admin_principals entries must be plain emails, without a user: or serviceAccount: prefix."
  }
}

variable "api_ingress" {
  description = "Network ingress of the gRPC API service. INGRESS_TRAFFIC_ALL lets clients outside Google Cloud reach it (IAM still applies); restrict it when every client is inside the VPC or behind a load balancer."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.api_ingress)
    error_message = "api_ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

# --- Capacity ---

variable "api_min_instances" {
  description = "Minimum instances of the API service. At least 1: instances track Databricks work in the background between requests."
  type        = number
  default     = 1

  validation {
    condition     = var.api_min_instances >= 1
    error_message = "api_min_instances must be at least 1 (background tracking needs a running instance)."
  }
}

variable "api_max_instances" {
  description = "Maximum instances of the API service."
  type        = number
  default     = 10

  validation {
    condition     = var.api_max_instances >= var.api_min_instances
    error_message = "api_max_instances must be at least api_min_instances."
  }
}

variable "api_concurrency" {
  description = "Concurrent requests per API instance. WaitOperation holds a request for up to LRO_MAX_WAIT_SECONDS, so this is high (Cloud Run's maximum is 1000)."
  type        = number
  default     = 1000

  validation {
    condition     = var.api_concurrency >= 1 && var.api_concurrency <= 1000
    error_message = "api_concurrency must be between 1 and 1000."
  }
}

variable "http_min_instances" {
  description = "Minimum instances of the HTTP front that Cloud Workflows calls."
  type        = number
  default     = 1

  validation {
    condition     = var.http_min_instances >= 0
    error_message = "http_min_instances must not be negative."
  }
}

variable "http_max_instances" {
  description = "Maximum instances of the HTTP front."
  type        = number
  default     = 5

  validation {
    condition     = var.http_max_instances >= 1 && var.http_max_instances >= var.http_min_instances
    error_message = "http_max_instances must be at least 1 and at least http_min_instances."
  }
}

variable "http_concurrency" {
  description = "Concurrent requests per HTTP front instance."
  type        = number
  default     = 250

  validation {
    condition     = var.http_concurrency >= 1 && var.http_concurrency <= 1000
    error_message = "http_concurrency must be between 1 and 1000."
  }
}

variable "cpu" {
  description = "CPU limit of each server instance."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of each server instance (10,000 held WaitOperation calls take about 280 MB)."
  type        = string
  default     = "1Gi"
}

variable "methods" {
  description = "Modules of durable methods the servers load (LRO_METHODS, comma-separated), shipped in an image built FROM lro-server's (see deploy/Dockerfile); empty: none."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([A-Za-z_][A-Za-z0-9_.]*(,[A-Za-z_][A-Za-z0-9_.]*)*)?$", var.methods))
    error_message = "methods must be module names separated by commas, e.g. acme.methods,acme.more."
  }
}

variable "workflows_endpoint" {
  description = "host:port of the Cloud Workflows executions API the servers call (LRO_WORKFLOWS_ENDPOINT); empty: Google's global endpoint."
  type        = string
  default     = ""
}

variable "log_level" {
  description = "Server log level (LRO_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "workflow_call_log_level" {
  description = "Call logging of the waiter workflow: LOG_ALL_CALLS, LOG_ERRORS_ONLY or LOG_NONE."
  type        = string
  default     = "LOG_ERRORS_ONLY"

  validation {
    condition     = contains(["LOG_ALL_CALLS", "LOG_ERRORS_ONLY", "LOG_NONE"], var.workflow_call_log_level)
    error_message = "workflow_call_log_level must be LOG_ALL_CALLS, LOG_ERRORS_ONLY or LOG_NONE."
  }
}
