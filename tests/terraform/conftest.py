"""Fixtures of the terraform/ checks: the parsed configuration and the provider schema."""

from __future__ import annotations

from typing import Any

import pytest
from terraform_config import TERRAFORM_DIR, Terraform, load_schema


@pytest.fixture(scope="session")
def tf() -> Terraform:
    """The parsed terraform/ configuration."""
    return Terraform.load(TERRAFORM_DIR)


@pytest.fixture(scope="session")
def provider_schema() -> dict[str, Any]:
    """The committed subset of the google provider schema."""
    return load_schema()
