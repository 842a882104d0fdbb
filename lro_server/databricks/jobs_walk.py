"""The jobs family's walk of runs/list: the tracked runs a few list pages show, so that
runs followed together cost a few pages per cadence, not a runs/get each."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lro_server.databricks.client import Databricks, JsonDict
from lro_server.databricks.jobs_output import API
from lro_server.databricks.work import Work

#: runs/list page size (Databricks' maximum).
LIST_LIMIT = 25
#: Most list pages read per batch, as a share of the operations it serves.
PAGES_PER_OPERATION = 0.25
#: Fewest ended runs worth a walk of the completed runs (fewer are read one by one).
MIN_ENDED_WALK = 3
#: How much earlier than its operation a run may have started by Databricks' clock (our
#: clock and the workspace's may disagree by this much).
START_TIME_SLACK_MS = 5 * 60 * 1000


async def walk_runs(
    dbx: Databricks, tracked: Sequence[Work], seen: Callable[[Mapping[str, Any]], None]
) -> None:
    """Tell ``seen`` of each run of ``tracked`` that runs/list pages show (tasks expanded),
    as its page arrives (so the caller may act on it while the walk goes on).

    First the active runs (``active_only``). When that walk read the whole list, a tracked
    run not on it has ended since the last look: the completed runs started since the
    oldest such operation was created (``completed_only``, ``start_time_from``) show how,
    so runs ending together cost a few pages, not a runs/get each. Repairs are left out of
    that second walk (their run started long before); the caller reads alone the runs
    neither walk showed.
    """
    found: set[int] = set()

    def note(run: Mapping[str, Any]) -> None:
        found.add(int(run.get("run_id") or 0))
        seen(run)

    wanted = {work.ids.run_id for work in tracked}
    cap = max(1, int(len(tracked) * PAGES_PER_OPERATION))
    whole = await _walk(dbx, wanted, {"active_only": "true"}, cap, note)
    ended = [work for work in tracked if work.ids.run_id not in found and work.action != "repair"]
    if whole and len(ended) >= MIN_ENDED_WALK:
        since = min(work.create_time_us // 1000 for work in ended) - START_TIME_SLACK_MS
        query: JsonDict = {"completed_only": "true", "start_time_from": max(0, since)}
        cap = max(1, int(len(ended) * PAGES_PER_OPERATION))
        await _walk(dbx, {work.ids.run_id for work in ended}, query, cap, note)


async def _walk(
    dbx: Databricks,
    wanted: set[int],
    filters: JsonDict,
    max_pages: int,
    seen: Callable[[Mapping[str, Any]], None],
) -> bool:
    """runs/list pages (tasks expanded) under ``filters`` until every ``wanted`` run was
    seen, the list ended, or ``max_pages`` were read; ``seen`` is told of each wanted run
    (once) as its page arrives.

    Returns whether the whole list was read.
    """
    found: set[int] = set()
    page_token = ""
    for _ in range(max_pages):
        query: JsonDict = {**filters, "expand_tasks": "true", "limit": LIST_LIMIT}
        if page_token:
            query["page_token"] = page_token
        page = await dbx.call("GET", f"{API}/runs/list", query=query)
        for run in page.get("runs") or []:
            run_id = int(run.get("run_id") or 0)
            if run_id in wanted and run_id not in found:
                found.add(run_id)
                seen(run)
        page_token = str(page.get("next_page_token") or "")
        if not page_token:
            return True
        if len(found) == len(wanted):
            break
    return False
