"""The demo job ``simulate-databricks`` starts with: job 1, four tasks with dependencies.

So that the README's examples (``lro run-now 1``, ``{"job_id": 1}``) work as written, and
a run shows progress task by task: ingest, then features and quality side by side, then train.
"""

from __future__ import annotations

from .routing import JSON

__all__ = ["DEMO_JOB", "DEMO_JOB_ID"]

#: Its id (ids the simulator hands out start at 1001).
DEMO_JOB_ID = 1
DEMO_JOB: JSON = {
    "name": "demo",
    "tasks": [
        {"task_key": "ingest", "notebook_task": {"notebook_path": "/demo/ingest"}},
        {
            "task_key": "features",
            "depends_on": [{"task_key": "ingest"}],
            "notebook_task": {"notebook_path": "/demo/features"},
        },
        {
            "task_key": "quality",
            "depends_on": [{"task_key": "ingest"}],
            "notebook_task": {"notebook_path": "/demo/quality"},
        },
        {
            "task_key": "train",
            "depends_on": [{"task_key": "features"}, {"task_key": "quality"}],
            "notebook_task": {"notebook_path": "/demo/train"},
        },
    ],
}
