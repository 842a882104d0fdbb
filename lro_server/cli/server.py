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
from lro_server.core.errors import LroError

_log = logging.getLogger("lro_server")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lro-server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC and HTTP/JSON fronts")
    serve.add_argument("--host", help="bind address (LRO_HOST)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (LRO_GRPC_PORT, default 50051)")
    serve.add_argument(
        "--http-port", type=int, help="HTTP/JSON port (LRO_HTTP_PORT, default 8080; -1 disables)"
    )
    serve.add_argument("--store", help="store URL (LRO_STORE, default sqlite:///var/lro.db)")
    serve.add_argument(
        "--methods", help="modules of durable methods, comma-separated (LRO_METHODS)"
    )
    migrate = commands.add_parser("migrate", help="create or upgrade the store's schema")
    migrate.add_argument("--store", help="store URL (LRO_STORE)")
    simulate = commands.add_parser(
        "simulate-databricks", help="run the Databricks REST simulator (for tests and demos)"
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8765)
    return parser


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
        from lro_server.testing.databricks_sim import serve_forever

        serve_forever(args.host, args.port)
        return
    settings = settings_from(args)
    configure_logging(
        settings.log_level, settings.log_format, trace_project=settings.log_trace_project
    )
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
        else:
            from lro_server.cli.tracing_setup import install_tracing

            shutdown_tracing = install_tracing(settings.tracing)
            try:
                _run(_serve(settings))
            finally:
                shutdown_tracing()
    except LroError as exc:
        sys.exit(f"lro-server: {exc.code.name}: {exc.message}")
    except MethodsError as exc:
        sys.exit(f"lro-server: {exc}")


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
