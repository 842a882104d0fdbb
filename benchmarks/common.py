"""Shared plumbing of the benchmarks: the machine, percentiles, tables and JSON results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_path() or "",
        "loadavg": os.getloadavg()[0],
    }


def wrk_path() -> str | None:
    """The wrk binary, if installed."""
    for directory in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        candidate = Path(directory) / "wrk"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def percentile(sorted_samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted samples (0.0 when empty)."""
    if not sorted_samples:
        return 0.0
    index = min(len(sorted_samples) - 1, max(0, round(fraction * len(sorted_samples)) - 1))
    return sorted_samples[index]


def latency_summary(samples_seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p99 in microseconds."""
    ordered = sorted(samples_seconds)
    return {
        "p50_us": round(percentile(ordered, 0.50) * 1e6, 1),
        "p99_us": round(percentile(ordered, 0.99) * 1e6, 1),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned columns (Markdown-compatible)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_result(name: str, data: dict[str, Any], output: Path | None = None) -> Path:
    """Write ``data`` (plus the machine) as JSON; returns the file written."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = output or RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    payload = {"benchmark": name, "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def git_revision() -> str:
    """Short commit of the working tree ("" outside git)."""
    try:
        answer = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except OSError:
        return ""
    return answer.stdout.strip()


def python() -> str:
    """The interpreter running the benchmarks (used for every child process)."""
    return sys.executable


def revision_tree(revision: str, into: Path) -> Path | None:
    """The source of ``revision`` (``lro_server/`` and ``benchmarks/``) extracted under
    ``into``, to run an earlier revision beside this one; None when git or the revision is
    not at hand (a shallow clone)."""
    root = Path(__file__).resolve().parent.parent
    try:
        archive = subprocess.run(
            ["git", "archive", revision, "lro_server", "benchmarks"],
            capture_output=True,
            check=True,
            cwd=root,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    tree = into / f"rev-{revision}"
    tree.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree
