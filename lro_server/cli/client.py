"""``lro``: get, list, wait for, cancel and delete operations of an lro-server; start a
durable method and resolve a promise.

Exit codes: 0 success; 1 the operation failed (or a call was refused: not found, denied,
unreachable); 2 usage error; 3 ``wait --timeout`` ran out first; 130 interrupted.
``--json`` prints proto3 JSON on stdout for scripts; errors always go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.longrunning import operations_pb2
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live

from lro_server.cli import client_durable as durable
from lro_server.cli import client_view as view
from lro_server.cli.client_rpc import Connection, Target, operation_name
from lro_server.cli.client_settings import ClientSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130
#: Codes on which ``wait`` keeps trying (the server restarts, a proxy times out a call).
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: Longest pause between two attempts after a transient failure.
MAX_BACKOFF = 5.0


def _common(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--server", default=default, help="host:port (LRO_SERVER)")
    parser.add_argument("--token", default=default, help="bearer token (LRO_TOKEN)")
    parser.add_argument(
        "--tls", action="store_true", default=default, help="use TLS (LRO_TLS=true)"
    )
    parser.add_argument("--ca-cert", default=default, help="PEM CA bundle for TLS (LRO_CA_CERT)")
    parser.add_argument(
        "--json", action="store_true", default=default, help="print proto3 JSON for scripts"
    )


def parser() -> argparse.ArgumentParser:
    """The argument parser (common options go before or after the command)."""
    root = argparse.ArgumentParser(prog="lro", description=__doc__.split("\n", 1)[0])
    _common(root, None)
    # Sub-commands accept the same options; SUPPRESS keeps them from resetting the root's.
    common = argparse.ArgumentParser(add_help=False)
    _common(common, argparse.SUPPRESS)
    commands = root.add_subparsers(dest="command", required=True)
    get = commands.add_parser("get", parents=[common], help="show one operation")
    get.add_argument("name", help="operations/ID or ID")
    listing = commands.add_parser("list", parents=[common], help="list operations")
    listing.add_argument("--filter", default="", help='AIP-160 filter, e.g. "done = false"')
    listing.add_argument("--page-size", type=int, default=0, help="operations per page")
    listing.add_argument("--page-token", default="", help="continue from this page token")
    listing.add_argument("--all", action="store_true", help="follow every page")
    wait = commands.add_parser(
        "wait", parents=[common], help="follow an operation until it is done"
    )
    wait.add_argument("name", help="operations/ID or ID")
    wait.add_argument("--timeout", type=float, default=0.0, help="give up after S seconds")
    wait.add_argument(
        "--interval", type=float, default=2.0, help="seconds per WaitOperation call (refresh)"
    )
    wait.add_argument("--quiet", action="store_true", help="no progress, only the outcome")
    cancel = commands.add_parser("cancel", parents=[common], help="ask an operation to stop")
    cancel.add_argument("name", help="operations/ID or ID")
    delete = commands.add_parser("delete", parents=[common], help="forget an operation")
    delete.add_argument("name", help="operations/ID or ID")
    durable.add_commands(commands, common)
    return root


def settings_from(args: argparse.Namespace) -> ClientSettings:
    """Client settings from the environment, overridden by the flags that were given."""
    given = {
        key: value
        for key, value in vars(args).items()
        if key in ClientSettings.model_fields and value not in (None, False)
    }
    return ClientSettings(**given)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValidationError as exc:
        print(f"lro: invalid setting: {exc.errors()[0]['msg']}", file=sys.stderr)
        return EXIT_USAGE
    target = Target(
        server=settings.server, token=settings.token, tls=settings.tls, ca_cert=settings.ca_cert
    )
    commands: dict[str, Callable[[Connection, argparse.Namespace, Console], int]] = {
        "get": _get,
        "list": _list,
        "wait": _wait,
        "cancel": _cancel,
        "delete": _delete,
        "start": _start,
        "resolve": _resolve,
    }
    console = _console()
    try:
        with Connection(target) as connection:
            return commands[args.command](connection, args, console)
    except grpc.RpcError as exc:
        return _rpc_failed(exc, args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as exc:  # e.g. an unreadable --ca-cert
        print(f"lro: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except durable.UsageError as exc:
        durable.usage(str(exc))
        return EXIT_USAGE


def _console() -> Console:
    terminal = sys.stdout.isatty()
    # Off a terminal (pipes, CI logs) rich would wrap at 80 columns and split names.
    return Console(file=sys.stdout, width=None if terminal else 200, highlight=False)


def _rpc_failed(exc: grpc.RpcError, args: argparse.Namespace) -> int:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"{details} (is the server running at the address given with --server?)"
    print(f"lro: {code.name}: {details}", file=sys.stderr)
    return EXIT_FAILED


def _print_json(value: Any) -> None:
    sys.stdout.write(view.dumps(value) + "\n")
    sys.stdout.flush()


# -- commands -------------------------------------------------------------------------------


def _get(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    operation = connection.get(operation_name(args.name))
    if args.json:
        _print_json(view.to_json(operation))
    else:
        console.print(view.operation_view(operation))
    return EXIT_OK


def _list(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    if args.page_size < 0:
        print("lro: --page-size must not be negative", file=sys.stderr)
        return EXIT_USAGE
    if args.all:
        operations = list(connection.list_all(args.filter, args.page_size))
        token = ""
    else:
        page = connection.list_page(args.filter, args.page_size, args.page_token)
        operations, token = list(page.operations), page.next_page_token
    if args.json:
        answer = operations_pb2.ListOperationsResponse(operations=operations, next_page_token=token)
        _print_json(view.to_json(answer))
        return EXIT_OK
    console.print(view.list_table(operations))
    if token:
        print(f"more: lro list --page-token {token}", file=sys.stderr)
    return EXIT_OK


def _cancel(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    name = operation_name(args.name)
    connection.cancel(name)
    if args.json:
        _print_json({})
    else:
        console.print(f"cancellation requested for {name}")
    return EXIT_OK


def _delete(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    name = operation_name(args.name)
    connection.delete(name)
    if args.json:
        _print_json({})
    else:
        console.print(f"deleted {name}")
    return EXIT_OK


def _start(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    operation = durable.start(connection, args)
    if args.wait:
        args.name = operation.name
        return _wait(connection, args, console)
    if args.json:
        _print_json(view.to_json(operation))
    else:
        console.print(view.operation_view(operation))
    return EXIT_OK


def _resolve(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    promise = durable.resolve(connection, args)
    if args.json:
        _print_json(view.to_json(promise))
    else:
        console.print(durable.promise_line(promise))
    return EXIT_OK


def _wait(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    if args.timeout < 0 or args.interval <= 0:
        print("lro: --timeout must be >= 0 and --interval > 0", file=sys.stderr)
        return EXIT_USAGE
    name = operation_name(args.name)
    follower = _Follower(connection, name, args.timeout, args.interval)
    show = not (args.json or args.quiet)
    if show and console.is_terminal:
        with Live(console=console, refresh_per_second=4) as live:
            operation = follower.run(lambda op: live.update(view.operation_view(op, follower.age)))
    elif show:
        lines = _ChangedLines()
        operation = follower.run(lines.show)
    else:
        operation = follower.run(lambda op: None)
    if args.json:
        _print_json(view.to_json(operation))
    elif not console.is_terminal and not args.quiet:
        console.print(view.operation_view(operation, follower.age))
    if not operation.done:
        print(f"lro: {name} is not done after {args.timeout:g}s", file=sys.stderr)
        return EXIT_TIMEOUT
    error = view.error_text(operation)
    if error:
        print(f"lro: {name} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
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


class _Follower:
    """WaitOperation in a loop of short calls, so progress shows while the operation runs."""

    def __init__(self, connection: Connection, name: str, timeout: float, interval: float):
        self.connection = connection
        self.name = name
        self.timeout = timeout
        self.interval = interval
        self.started = time.monotonic()

    @property
    def age(self) -> float:
        """Seconds since following began."""
        return time.monotonic() - self.started

    def run(self, update: Callable[[operations_pb2.Operation], None]) -> operations_pb2.Operation:
        """Follow until done or timed out; return the latest operation seen."""
        deadline = self.started + self.timeout if self.timeout else None
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


def run() -> None:
    """``python -m lro_server.cli.client``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
