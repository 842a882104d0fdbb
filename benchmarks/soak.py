"""Soak runs of the reliability tests: the same scenarios, SCALE times larger.

    python benchmarks/soak.py --scale 10            # 1,000 live operations at the kill, ...
    python benchmarks/soak.py --scale 5 --repeat 3

Runs tests/integration/test_crash_survival.py, test_faults.py, test_replicas_exclusive.py
and test_fuzz_inputs.py with ``LRO_SOAK_SCALE`` set (operations and generated inputs are
multiplied by it) and prints their figures lines. ``make test`` runs them at scale 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/integration/test_crash_survival.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_replicas_exclusive.py",
    "tests/integration/test_fuzz_inputs.py",
]


def main(argv: list[str] | None = None) -> int:
    """Run the soak; returns pytest's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=int, default=10, help="multiplier of every scenario")
    parser.add_argument("--repeat", type=int, default=1, help="runs of the whole set")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (e.g. -k sqlite)")
    args = parser.parse_args(argv)
    env = {**os.environ, "LRO_SOAK_SCALE": str(args.scale)}
    status = 0
    for run in range(args.repeat):
        print(f"soak run {run + 1}/{args.repeat}, scale {args.scale}", flush=True)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-o", "timeout=3600", *TESTS, *args.pytest_args]
        status = subprocess.call(command, cwd=ROOT, env=env) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
