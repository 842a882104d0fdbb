"""The table of benchmarks/durable_vs_dbos.py: each figure of ours beside DBOS's, the
ratio measured in the same run, and the target."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.common import table


def _round_ratio(ratios: list[float] | None) -> str:
    """The median of the rounds' ratios, and their range."""
    if not ratios:
        return "n/a"
    ordered = sorted(ratios)
    return f"{statistics.median(ordered):.1f}x ({ordered[0]:.1f}-{ordered[-1]:.1f})"


def report(r: dict[str, Any]) -> None:
    """Print the table of the results ``r`` of one run."""
    d = {k: r.get(k) for k in ("dbos_steps", "dbos_sleep", "dbos_crash")}
    has = r["dbos"].startswith("3.4")

    def ratio(ours: float, theirs: float | None, higher_is_better: bool = False) -> str:
        if not has or theirs is None or not ours:
            return "n/a"
        return f"{(ours / theirs) if higher_is_better else (theirs / ours):.1f}x"

    s, sl, c = r["ours_steps"], r["ours_sleep"], r["ours_crash"]
    ds = d["dbos_steps"] or {}
    dsl = d["dbos_sleep"] or {}
    dc = d["dbos_crash"] or {}
    rows = [
        [
            "steps/s, sequential 10-step methods",
            f"{s['steps_per_s']:.0f}",
            f"{ds.get('steps_per_s', 0):.0f}" if has else "n/a",
            _round_ratio(r.get("steps_ratios")) if has else "n/a",
            ">= 3x",
        ],
        [
            "wall ms per step (whole method)",
            f"{s['ms_per_step']:.3f}",
            f"{ds.get('ms_per_step', 0):.3f}" if has else "n/a",
            ratio(s["ms_per_step"], ds.get("ms_per_step")),
            "",
        ],
        [
            "ctx.step overhead ms (async step)",
            f"{s['overhead_ms_per_step']:.3f}",
            "",
            "",
            "<= 0.35",
        ],
        [
            "ctx.step overhead ms (sync step, thread)",
            f"{s['overhead_ms_per_sync_step']:.3f}",
            "",
            "",
            "",
        ],
        [
            "server CPU ms per step",
            f"{s['server_cpu_ms_per_step']:.3f}",
            f"{ds.get('cpu_ms_per_step', 0):.3f}" if has else "n/a",
            "",
            "",
        ],
        [
            "kill -9: first step after up, s",
            f"{c['first_step_after_up_s']:.3f}",
            f"{dc.get('first_step_after_up_s', 0):.3f}" if has else "n/a",
            ratio(c["first_step_after_up_s"], dc.get("first_step_after_up_s")),
            "<= 0.2",
        ],
        [
            "kill -9: first step after spawn, s",
            f"{c['first_step_after_spawn_s']:.3f}",
            f"{dc.get('first_step_after_spawn_s', 0):.3f}" if has else "n/a",
            "",
            "",
        ],
        [
            "kill -9: all done after up, s",
            f"{c['all_done_after_up_s']:.2f}",
            f"{dc.get('all_done_after_up_s', 0):.2f}" if has else "n/a",
            ratio(c["all_done_after_up_s"], dc.get("all_done_after_up_s")),
            "",
        ],
        ["kill -9: recorded steps run twice", c["recorded_run_twice"], "", "", "0"],
        [
            "kill -9: unrecorded steps run again",
            c["unrecorded_run_again"],
            dc.get("run_again", "n/a") if has else "n/a",
            "",
            "(at-least-once)",
        ],
        [
            f"{r['sizes']['sleep']} sleeping 2 s: done after last start, s",
            f"{sl['seconds_after_last_start']:.2f}",
            f"{dsl.get('seconds_after_last_start', 0):.2f}" if has else "n/a",
            ratio(sl["seconds_after_last_start"], dsl.get("seconds_after_last_start")),
            "<= 3",
        ],
        [
            "  threads (server / DBOS peak)",
            sl["server_threads"],
            dsl.get("peak_threads", "n/a") if has else "n/a",
            "",
            "no thread per method",
        ],
        [
            f"{r['ours_waiting']['waiting']} waiting at once: KB per method",
            f"{r['ours_waiting']['kb_per_waiting']:.1f}",
            "",
            "",
            "<= 30",
        ],
        [
            "ResolvePromise -> resumed, median ms",
            f"{r['ours_promise_ms']:.1f}",
            f"{r.get('dbos_event_ms', 0):.1f} / {r.get('dbos_event_tuned_ms', 0):.1f}"
            if has
            else "n/a",
            ratio(r["ours_promise_ms"], r.get("dbos_event_tuned_ms")),
            "<= 10",
        ],
        ["child done -> parent resumed, median ms", f"{r['ours_child_ms']:.1f}", "", "", "<= 50"],
        [
            "replay of a 1,000-step journal, CPU ms",
            f"{r['ours_replay_cpu_ms']:.1f}",
            "",
            "",
            "<= 20",
        ],
    ]
    print(f"DBOS: {r['dbos']}")
    print(table(["figure", "lro-server", "DBOS", "ratio", "target"], rows))
