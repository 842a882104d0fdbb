"""Console entry points: a missing server dependency is one line that says what to install.

``pip install 'lro-server[client]'`` installs the Python client only; ``lro-server`` and
``lro`` need the server's dependencies (``pip install 'lro-server[server]'``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

#: What to install for the commands.
INSTALL = "pip install 'lro-server[server]'"


def _load(module: str, program: str) -> Callable[[], Any]:
    try:
        loaded = __import__(module, fromlist=["main"])
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("lro_server"):
            raise
        sys.exit(
            f"{program}: {exc.name} is not installed: {program} needs the server's "
            f"dependencies ({INSTALL})"
        )
    main: Callable[[], Any] = loaded.main
    return main


def server() -> None:
    """``lro-server``."""
    _load("lro_server.cli.server", "lro-server")()


def client() -> None:
    """``lro`` (its exit code is main's return value)."""
    sys.exit(_load("lro_server.cli.client", "lro")())
