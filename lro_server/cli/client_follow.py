"""Following one operation in ``lro``: live view, change lines, the outcome, and Ctrl-C.

In a terminal the view is redrawn in place (state, progress from tasks or steps done, link,
elapsed time since the operation was created, one row per task or step) and ends with the
outcome; in a pipe one line is printed per change, then the final summary. The outcome is
printed once: in the view, or (pipes, ``--quiet``, ``--json``) as its own line. Ctrl-C stops
following, not the work: the message says so and how to cancel it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable

import grpc
from google.longrunning import operations_pb2
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from lro_server.cli import client_view as view
from lro_server.cli.client_rpc import Connection

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130
#: Codes on which following keeps trying (the server restarts, a proxy times out a call).
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: Longest pause between two attempts after a transient failure.
MAX_BACKOFF = 5.0


@dataclasses.dataclass(frozen=True)
class FollowOptions:
    """How to follow.

    Attributes:
        timeout: Give up after this many seconds (0: never).
        interval: Seconds per WaitOperation call (how often the view refreshes at least).
        quiet: Print only the outcome.
        as_json: Print the final operation as proto3 JSON.
    """

    timeout: float = 0.0
    interval: float = 2.0
    quiet: bool = False
    as_json: bool = False


def follow(connection: Connection, name: str, options: FollowOptions, console: Console) -> int:
    """Follow ``name`` until done (or the timeout); print as the options say; the exit code."""
    follower = Follower(connection, name, options.timeout, options.interval)
    show = not (options.as_json or options.quiet)
    try:
        if show and console.is_terminal:
            latest: dict[str, operations_pb2.Operation] = {}

            def render() -> RenderableType:
                # Called at every refresh: elapsed time moves on between two answers.
                if "op" not in latest:
                    return Text(f"following {name}")
                return view.operation_view(latest["op"])

            with Live(console=console, refresh_per_second=4, get_renderable=render):
                operation = follower.run(lambda op: latest.update(op=op))
        elif show:
            lines = _ChangedLines()
            operation = follower.run(lines.show)
        else:
            operation = follower.run(lambda op: None)
    except KeyboardInterrupt:
        print(
            f"lro: stopped following {name}; the work goes on. Cancel it with: lro cancel {name}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return _report(operation, options, show, console)


def _report(
    operation: operations_pb2.Operation, options: FollowOptions, show: bool, console: Console
) -> int:
    name = operation.name
    in_view = show and console.is_terminal  # the live view already shows the outcome
    if options.as_json:
        sys.stdout.write(view.dumps(view.to_json(operation)) + "\n")
    elif show and not in_view:
        console.print(view.operation_view(operation, outcome=False))
    if not operation.done:
        print(f"lro: {name} is not done after {options.timeout:g}s", file=sys.stderr)
        return EXIT_TIMEOUT
    error = view.error_text(operation)
    if error:
        if not in_view:
            print(f"lro: {name} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    if not in_view and not options.as_json:
        console.print("succeeded")
    return EXIT_OK


class _ChangedLines:
    """Prints a progress line whenever it differs from the previous one."""

    def __init__(self) -> None:
        self.last = ""

    def show(self, operation: operations_pb2.Operation) -> None:
        line = view.progress_line(operation)
        if line != self.last:
            print(line, flush=True)
            self.last = line


class Follower:
    """WaitOperation in a loop of short calls, so progress shows while the operation runs."""

    def __init__(self, connection: Connection, name: str, timeout: float, interval: float):
        self.connection = connection
        self.name = name
        self.timeout = timeout
        self.interval = interval

    def run(self, update: Callable[[operations_pb2.Operation], object]) -> operations_pb2.Operation:
        """Follow until done or timed out; return the latest operation seen."""
        started = time.monotonic()
        deadline = started + self.timeout if self.timeout else None
        operation = self.connection.get(self.name)
        update(operation)
        backoff = 0.5
        while not operation.done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            chunk = self.interval if remaining is None else min(self.interval, remaining)
            try:
                operation = self.connection.wait(self.name, chunk)
            except grpc.RpcError as exc:
                if not isinstance(exc, grpc.Call) or exc.code() not in TRANSIENT:
                    raise
                # The server restarts or a proxy dropped the held call: try again shortly.
                time.sleep(min(backoff, max(0.0, remaining or backoff)))
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.5
            update(operation)
        return operation
