# Terraform and provider versions. The provider pin matches the schema subset committed in
# schema/google_provider_subset.json (see docs/deploy.md, "Offline checks"): change both
# together with scripts/extract_provider_schema.py.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = var.labels
}
