"""``lro``: start Databricks work and durable methods on an lro-server, resolve promises,
then get, list, wait for, cancel and delete its operations.

Exit codes: 0 success; 1 the operation failed (or a call was refused: not found, denied,
unreachable); 2 usage error; 3 ``--timeout`` ran out first; 130 interrupted (the work goes on).
``--json`` prints proto3 JSON on stdout for scripts; errors always go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.longrunning import operations_pb2
from pydantic import ValidationError
from rich.console import Console

from lro_server.cli import client_durable as durable
from lro_server.cli import client_start as start
from lro_server.cli import client_view as view
from lro_server.cli.client_follow import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    FollowOptions,
    follow,
)
from lro_server.cli.client_rpc import Connection, Target, operation_name
from lro_server.cli.client_settings import ClientSettings

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TIMEOUT", "EXIT_USAGE", "main"]


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
    root = argparse.ArgumentParser(prog="lro", description=__doc__.split("\n\n", 1)[0])
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
    following = argparse.ArgumentParser(add_help=False)
    following.add_argument("--timeout", type=float, default=0.0, help="give up after S seconds")
    following.add_argument(
        "--interval", type=float, default=2.0, help="seconds per WaitOperation call (refresh)"
    )
    following.add_argument("--quiet", action="store_true", help="no progress, only the outcome")
    wait = commands.add_parser(
        "wait", parents=[common, following], help="follow an operation until it is done"
    )
    wait.add_argument("name", help="operations/ID or ID")
    starting = argparse.ArgumentParser(add_help=False, parents=[following])
    starting.add_argument(
        "--wait", action="store_true", help="then follow the operation until it is done"
    )
    starting.add_argument(
        "--request-id", default="", help="AIP-155 request id: the same id never starts twice"
    )
    run_now = commands.add_parser(
        "run-now", parents=[common, starting], help="run a Databricks job (Jobs.RunNow)"
    )
    run_now.add_argument("job_id", type=int, help="the job to run")
    run_now.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a job parameter (job_parameters); repeat for more",
    )
    submit = commands.add_parser(
        "submit", parents=[common, starting], help="submit a one-time run (Jobs.Submit)"
    )
    submit.add_argument(
        "--file", required=True, help="a SubmitRunRequest in proto3 JSON (runs/submit's body)"
    )
    chain = commands.add_parser(
        "chain", parents=[common, starting], help="run job runs one after the other (RunChain)"
    )
    chain.add_argument("--file", required=True, help="a RunChainRequest in proto3 JSON")
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
        "run-now": _run_now,
        "submit": _submit,
        "chain": _chain,
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
    except start.UsageError as exc:
        print(f"lro: {exc}", file=sys.stderr)
        return EXIT_USAGE
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


def _follow_options(args: argparse.Namespace) -> FollowOptions:
    if args.timeout < 0 or args.interval <= 0:
        raise start.UsageError("--timeout must be >= 0 and --interval > 0")
    return FollowOptions(
        timeout=args.timeout, interval=args.interval, quiet=args.quiet, as_json=bool(args.json)
    )


def _wait(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    options = _follow_options(args)
    return follow(connection, operation_name(args.name), options, console)


def _started(
    connection: Connection,
    args: argparse.Namespace,
    console: Console,
    operation: operations_pb2.Operation,
) -> int:
    """Print the new operation's name (its JSON with --json); then follow it with --wait
    (``--quiet``: only the outcome)."""
    if args.wait:
        if not (args.json or args.quiet):
            print(operation.name, flush=True)
        return follow(connection, operation.name, _follow_options(args), console)
    if args.json:
        _print_json(view.to_json(operation))
    else:
        print(operation.name, flush=True)
    return EXIT_OK


def _run_now(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    _follow_options(args)  # refuse bad follow flags before anything starts
    params = start.parameters(args.param)
    operation = start.run_now(connection, args.job_id, params, args.request_id)
    return _started(connection, args, console, operation)


def _submit(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    _follow_options(args)
    operation = start.submit(connection, args.file, args.request_id)
    return _started(connection, args, console, operation)


def _chain(connection: Connection, args: argparse.Namespace, console: Console) -> int:
    _follow_options(args)
    operation = start.chain(connection, args.file, args.request_id)
    return _started(connection, args, console, operation)


def run() -> None:
    """``python -m lro_server.cli.client``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
