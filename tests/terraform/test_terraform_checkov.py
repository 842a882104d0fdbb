"""checkov finds nothing to fix in terraform/, and every check skipped says why in the code.

checkov lives in its own virtualenv (.venv-checkov, made by `make test`): it ships a module
named `hcl2` that conflicts with python-hcl2 in the project's environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from terraform_config import ROOT, TERRAFORM_DIR

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
_SKIP = re.compile(r"#\s*checkov:skip=(?P<id>[A-Z0-9_]+)(?::(?P<reason>.*))?")


def _checkov_or_skip() -> None:
    if CHECKOV.exists():
        return
    message = f"{CHECKOV.relative_to(ROOT)} is missing: run `make test` (it creates it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_checkov_reports_no_failed_check() -> None:
    _checkov_or_skip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "PRISMA_"))}
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(TERRAFORM_DIR),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--output",
            "json",
            "--skip-download",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = {"failed": 0, "parsing_errors": 0, "resource_count": 0}
    failed = []
    for item in reports:
        for key in summary:
            summary[key] += item["summary"][key]
        failed += [
            f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
            for c in item.get("results", {}).get("failed_checks", [])
        ]
    assert summary["resource_count"] > 10, report
    assert summary["parsing_errors"] == 0, report
    assert summary["failed"] == 0, "\n".join(failed)


def test_every_checkov_skip_carries_a_reason() -> None:
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if match := _SKIP.search(line):
                where = f"{path.name}:{number}"
                assert (match["reason"] or "").strip(), f"{where}: skip without a reason"
                assert len(match["reason"].strip()) > 20, f"{where}: say why, not just that"
