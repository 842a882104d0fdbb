"""pytest plugin: tests report their figures (operations, faults, inputs, lost) in a summary.

A test asks for the ``figures`` fixture and calls it with keyword figures; the line is
printed (visible with ``-s``), attached to the test's report (so it crosses pytest-xdist
workers) and listed in a "figures" section at the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_KEY = "figures"


@pytest.fixture
def figures(record_property: Callable[[str, object], None]) -> Callable[..., None]:
    """Report figures: ``figures(operations=100, lost=0)``."""

    def report(**values: Any) -> None:
        line = ", ".join(f"{key.replace('_', ' ')} = {value}" for key, value in values.items())
        record_property(_KEY, line)
        print(f"figures: {line}")

    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List every reported figure line, by test."""
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == _KEY:
                    lines.append(f"{report.nodeid}: {value}")
    if lines:
        terminalreporter.section("figures")
        for line in sorted(lines):
            terminalreporter.write_line(line)
