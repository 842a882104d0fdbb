"""The DBOS side of the durable benchmark: benchmarks/dbos_workloads.py in child processes
on DBOS's SQLite system database (WAL, synchronous=NORMAL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.durable_ours import KILL_AFTER, read_effects

ROOT = Path(__file__).resolve().parent.parent
DBOS_SCRIPT = ROOT / "benchmarks" / "dbos_workloads.py"


def dbos_python() -> tuple[str, str]:
    """The interpreter that can import dbos, or "" and why not."""
    candidates = [
        os.environ.get("LRO_BENCH_DBOS_PYTHON", ""),
        sys.executable,
        str(ROOT / ".venv-dbos" / "bin" / "python"),
    ]
    for candidate in filter(None, candidates):
        check = subprocess.run(
            [candidate, "-c", "import dbos; print(dbos.__name__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode == 0:
            return candidate, ""
    return "", "DBOS is not installed (make bench installs the bench-dbos extra)"


def dbos(python: str, workload: str, tmp: Path, **flags: Any) -> dict[str, Any]:
    db = tmp / f"dbos-{workload}-{time.monotonic_ns()}.sqlite"
    args = [python, str(DBOS_SCRIPT), workload, "--db", str(db)]
    for key, value in flags.items():
        args += [f"--{key}", str(value)]
    answer = subprocess.run(
        args, capture_output=True, text=True, check=False, cwd=tmp, timeout=1800
    )
    if answer.returncode != 0:
        raise RuntimeError(f"DBOS {workload} failed: {answer.stderr[-2000:]}")
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def dbos_crash(python: str, tmp: Path, workflows: int) -> dict[str, Any]:
    db, effects = tmp / "dbos-crash.sqlite", tmp / "dbos-effects.log"
    env = {**os.environ, "BENCH_EFFECTS": str(effects), "BENCH_PHASE": "1"}
    first = subprocess.Popen(
        [python, str(DBOS_SCRIPT), "crash-start", "--db", str(db), "--workflows", str(workflows)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
    )
    assert first.stdout is not None
    first.stdout.readline()  # {"started": N}
    time.sleep(KILL_AFTER)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    env["BENCH_PHASE"] = "2"
    spawned = time.time()
    answer = subprocess.run(
        [python, str(DBOS_SCRIPT), "crash-recover", "--db", str(db), "--workflows", str(workflows)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp,
        timeout=600,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"DBOS crash-recover failed: {answer.stderr[-2000:]}")
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    after, again = read_effects(effects)
    return {
        "first_step_after_up_s": after[0] - result["up_at"] if after else float("nan"),
        "first_step_after_spawn_s": after[0] - spawned if after else float("nan"),
        "all_done_after_up_s": result["done_at"] - result["up_at"],
        "run_again": len(again),
    }
