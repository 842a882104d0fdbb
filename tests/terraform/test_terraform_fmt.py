"""terraform/ is formatted the way `terraform fmt` formats it."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from terraform_config import ROOT, TERRAFORM_DIR


def test_terraform_fmt_check() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH: `terraform fmt -check` not run")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        "terraform/ is not formatted; run `terraform fmt -recursive terraform/`:\n" + result.stdout
    )
