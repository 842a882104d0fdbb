"""``lro-server``: serve, migrate, simulate-databricks. Reads settings; nothing else does."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from lro_server.cli.logs import configure_logging
from lro_server.cli.methods import MethodsError
from lro_server.cli.settings import Settings
from lro_server.core.clock import SystemClock
from lro_server.core.errors import LroError

_log = logging.getLogger("lro_server")


def _default(name: str) -> str:
    """The default of setting ``name``, as the help shows it."""
    value = Settings.model_fields[name].get_default(call_default_factory=True)
    return str(value) if value not in ("", None, []) else '""'


def _settings_epilog() -> str:
    lines = ["every setting, its environment variable and its default (docs/configuration.md):"]
    lines += [f"  LRO_{name.upper()}={_default(name)}" for name in Settings.model_fields]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lro-server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the gRPC and HTTP/JSON fronts",
        description="Serve the gRPC and HTTP/JSON fronts. Flags override LRO_* variables.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host",
        help=f"bind address of both fronts (LRO_HOST, default {_default('host')}; "
        "0.0.0.0 listens on every interface, as in containers)",
    )
    serve.add_argument(
        "--grpc-port", type=int, help=f"gRPC port (LRO_GRPC_PORT, default {_default('grpc_port')})"
    )
    serve.add_argument(
        "--http-port",
        type=int,
        help=f"HTTP/JSON port (LRO_HTTP_PORT, default {_default('http_port')}; -1 disables it)",
    )
    serve.add_argument("--store", help=f"store URL (LRO_STORE, default {_default('store')})")
    serve.add_argument(
        "--methods", help="modules of durable methods, comma-separated (LRO_METHODS)"
    )
    migrate = commands.add_parser("migrate", help="create or upgrade the store's schema")
    migrate.add_argument("--store", help=f"store URL (LRO_STORE, default {_default('store')})")
    purge = commands.add_parser(
        "purge",
        help="delete done operations older than a duration (never unfinished ones, nor a "
        "done child of an unfinished parent)",
    )
    purge.add_argument(
        "--older-than",
        required=True,
        type=duration,
        metavar="DURATION",
        help="age of the last change, e.g. 30d, 12h, 15m, 90s",
    )
    purge.add_argument("--store", help=f"store URL (LRO_STORE, default {_default('store')})")
    simulate = commands.add_parser(
        "simulate-databricks",
        help="run the Databricks REST simulator (for tests and demos)",
        description=SIMULATOR_DESCRIPTION,
        epilog=_control_endpoints(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    simulate.add_argument(
        "--run-seconds",
        type=float,
        default=2.0,
        help="how long each task of a run takes, tasks that depend on others after them "
        "(default 2)",
    )
    simulate.add_argument(
        "--fail-ratio",
        type=float,
        default=0.0,
        help="share of runs, 0 to 1, whose first task fails with a realistic error; the tasks "
        "depending on it end UPSTREAM_FAILED (default 0)",
    )
    simulate.add_argument(
        "--hold",
        action="store_true",
        help="runs stay RUNNING until cancelled or released (POST /_sim/runs/release)",
    )
    simulate.add_argument(
        "--no-demo-job", action="store_true", help="start without the demo job (job_id 1)"
    )
    simulate.add_argument(
        "--seed", type=int, default=0, help="seeds which runs fail with --fail-ratio (default 0)"
    )
    return parser


SIMULATOR_DESCRIPTION = """\
A Databricks workspace on your machine: the REST API of jobs, clusters, command execution,
libraries, pipelines and SQL warehouses, with a bearer token of your choice. Start the server
with DATABRICKS_HOST=http://127.0.0.1:8765 DATABRICKS_TOKEN=dev (any token).

It starts with a demo job, job_id 1: task ingest, then features and quality, then train."""


def _control_endpoints() -> str:
    from lro_server.testing.databricks_sim.control_http import control_routes

    doc = (control_routes.__doc__ or "").split("Routes", 1)[-1].replace("``", "")
    body = "\n".join(line[4:] if line.startswith("    ") else line for line in doc.splitlines())
    return "control endpoints, not part of Databricks' API" + body.rstrip()


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in vars(args).items()
        if key in Settings.model_fields and value is not None
    }
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    args = _parser().parse_args(argv)
    if args.command == "simulate-databricks":
        _simulate(args)
        return
    settings = settings_from(args)
    configure_logging(
        settings.log_level, settings.log_format, trace_project=settings.log_trace_project
    )
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "purge":
            asyncio.run(_purge(settings, args.older_than))
        else:
            from lro_server.cli.tracing_setup import install_tracing

            shutdown_tracing = install_tracing(settings.tracing)
            try:
                _run(_serve(settings))
            finally:
                shutdown_tracing()
    except LroError as exc:
        sys.exit(f"lro-server: {exc.message}")
    except MethodsError as exc:
        sys.exit(f"lro-server: {exc}")


def _simulate(args: argparse.Namespace) -> None:
    from lro_server.testing.databricks_sim import RunBehaviour, serve_forever

    try:
        behaviour = RunBehaviour(
            run_seconds=args.run_seconds, fail_ratio=args.fail_ratio, hold=args.hold
        )
    except ValueError as exc:
        sys.exit(f"lro-server simulate-databricks: {exc}")
    try:
        serve_forever(
            args.host, args.port, behaviour=behaviour, demo_job=not args.no_demo_job, seed=args.seed
        )
    except OSError as exc:
        sys.exit(
            f"lro-server simulate-databricks: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}; choose another port with --port"
        )


def _run(coroutine: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


async def _migrate(settings: Settings) -> None:
    from lro_server.storage.factory import migrate_store

    await migrate_store(settings.store, retention_days=settings.retention_days)
    print(f"lro-server: schema of {settings.store} is up to date", flush=True)


_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def duration(text: str) -> float:
    """Seconds of ``30d``, ``12h``, ``15m`` or ``90s`` (argparse type)."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a whole number and d, h, m or s (e.g. 30d)"
        )
    return int(number) * _UNITS[unit]


async def _purge(settings: Settings, older_than: float) -> None:
    from lro_server.cli.parents import parent_operation
    from lro_server.core.expiry import Expiry
    from lro_server.storage.factory import open_store

    store = await open_store(settings.store)
    try:
        expiry = Expiry(store, SystemClock(), parent_of=parent_operation)
        total = 0
        while deleted := await expiry.purge(older_than):
            total += deleted
    finally:
        await store.close()
    print(f"lro-server: purged {total} done operations from {settings.store}", flush=True)


async def _serve(settings: Settings) -> None:
    from lro_server.cli.app import Application
    from lro_server.cli.config import app_config

    app = Application(app_config(settings))
    await app.start()
    http = f"http://{settings.host}:{app.http_port}" if app.http_port else "disabled"
    print(
        f"lro-server: gRPC on {settings.host}:{app.grpc_port}, HTTP/JSON on {http}, "
        f"store {settings.store}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("lro-server: shutting down", flush=True)
    await app.stop(grace=settings.shutdown_grace_seconds)


if __name__ == "__main__":
    main()
