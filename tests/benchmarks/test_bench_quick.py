"""The benchmark suite's smoke run, so the scripts never rot (no assertion on timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
@pytest.mark.xdist_group("benchmarks")
def test_quick_run_completes_and_writes_its_results(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    answer = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["quick"] is True
    assert {"nproc", "cpu", "python"} <= report["machine"].keys()
    suites = report["suites"]
    assert {"serving", "fanin", "write_path", "optimisations", "store"} <= suites.keys()
    assert all(s["status"] in ("ok", "absent") for s in suites.values())

    serving = suites["serving"]["result"]
    assert {(r["transport"], r["concurrency"]) for r in serving["rows"]} >= {
        ("grpc", 1),
        ("grpc", 16),
        ("http", 1),
        ("http", 16),
    }
    for row in serving["rows"]:
        assert {"ceiling", "real", "ratio"} <= row.keys()
        assert {"throughput", "p50_us", "p99_us"} <= row["real"].keys()

    fan_in = suites["fanin"]["result"]["fan_in"]
    assert {"held", "dropped", "rss_holding_mb", "last_answer_after_completion_s"} <= fan_in.keys()
    assert "added_latency_p50_s" in suites["fanin"]["result"]["cross_replica"]

    write = suites["write_path"]["result"]
    assert {"simulator_alone", "run_now", "tracker"} <= write.keys()

    before_after = suites["optimisations"]["result"]
    assert {
        "json_once_per_version",
        "data_version_after_commits",
        "handover",
        "unfinished_listing",
    } <= before_after.keys()
    assert {"before_ms", "after_ms"} <= before_after["unfinished_listing"].keys()
