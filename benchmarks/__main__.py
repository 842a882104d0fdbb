"""``python -m benchmarks [--quick] [--only NAME ...]``: every benchmark, one after another.

Our own suites run in this process (each starts its servers and load clients as child
processes); the standalone scripts beside them (``store_bench.py`` and, where present,
``tracker_calls.py`` and ``resume_latency.py``) run as child processes with ``--quick``
passed on. Each prints its table and writes its JSON to ``benchmarks/results/``; this
runner adds ``bench-<time>.json`` with every suite's status, duration and result. The exit
status is non-zero when a suite failed (missed targets are reported, not failures: figures
depend on the machine).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import fanin, optimisations, serving, write_path
from benchmarks.common import git_revision, python, write_result

HERE = Path(__file__).resolve().parent
SUITES: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "serving": serving.main,
    "fanin": fanin.main,
    "write_path": write_path.main,
    "optimisations": optimisations.main,
}
#: Scripts run as they are: (script, arguments of a quick run, arguments of a full run).
#: The store benchmark keeps its small workload in a full run too (its full workload on the
#: Spanner emulator takes many minutes: run ``benchmarks/store_bench.py`` alone for that).
SCRIPTS: dict[str, tuple[str, list[str], list[str]]] = {
    "store": ("store_bench.py", ["--quick", "--backend", "sqlite"], ["--quick"]),
    "tracker_calls": ("tracker_calls.py", ["--quick"], []),
    "resume_latency": ("resume_latency.py", ["--quick"], []),
    "replicas": ("replicas.py", ["--quick"], []),
    "filtered_listing": ("filtered_listing.py", ["--quick"], ["--backend", "sqlite"]),
    "webhook_latency": ("webhook_latency.py", ["--quick", "--runs", "2", "--scale", "30"], []),
    "durable": ("durable_vs_dbos.py", ["--quick"], []),
}


def _script(name: str, quick: bool) -> dict[str, Any]:
    script, quick_args, full_args = SCRIPTS[name]
    path = HERE / script
    if not path.exists():
        return {"status": "absent"}
    args = [python(), str(path), *(quick_args if quick else full_args)]
    answer = subprocess.run(args, cwd=HERE.parent, check=False, text=True, capture_output=True)
    sys.stdout.write(answer.stdout)
    if answer.returncode != 0:
        sys.stdout.write(answer.stderr[-4000:])
    return {
        "status": "ok" if answer.returncode == 0 else f"exit {answer.returncode}",
        "output": answer.stdout[-8000:],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the suites; returns the process exit status."""
    names = [*SUITES, *SCRIPTS]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: seconds, not minutes")
    parser.add_argument("--only", nargs="+", choices=names, help="run only these suites")
    parser.add_argument("--output", type=Path, help="summary JSON (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"quick": args.quick, "revision": git_revision(), "suites": {}}
    failed = False
    for name in args.only or names:
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        try:
            if name in SUITES:
                entry: dict[str, Any] = {
                    "status": "ok",
                    "result": SUITES[name](["--quick"] if args.quick else []),
                }
            else:
                entry = _script(name, args.quick)
        except Exception:
            traceback.print_exc()
            entry = {"status": "error", "error": traceback.format_exc()[-4000:]}
        entry["seconds"] = round(time.perf_counter() - started, 1)
        failed |= entry["status"] not in ("ok", "absent")
        report["suites"][name] = entry
        sys.stdout.flush()
    path = write_result("bench", report, args.output)
    print(f"\nwrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
