"""`lro-server serve` as a user runs it: a real process, its banner, SIGTERM, its failures."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lro_server.cli.settings import Settings

BANNER = re.compile(r"gRPC on ([\d.]+):(\d+), HTTP/JSON on http://[\d.]+:(\d+)")
SERVE = [sys.executable, "-m", "lro_server.cli.server", "serve"]


def _env() -> dict[str, str]:
    """The environment without LRO_* settings, so that the defaults apply."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRO_")}
    return {**env, "LRO_LOG_FORMAT": "json"}


def test_serve_prints_where_it_listens_and_stops_on_sigterm(tmp_path: Path):
    env = _env()
    store = f"sqlite:///{tmp_path}/ops.db"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lro_server.cli.server",
            "serve",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--store",
            store,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = BANNER.search(line)
        assert match, f"unexpected banner: {line!r}"
        assert match.group(1) == "127.0.0.1"  # loopback unless told otherwise
        http_port = int(match.group(3))
        name = "operations/00000000-0000-4000-8000-000000000000"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v1/{name}", timeout=5)
            raise AssertionError("expected 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
            body = json.loads(exc.read())
            assert body["error"]["status"] == "NOT_FOUND"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert (tmp_path / "ops.db").exists()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)  # also closes the pipes


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(("front", "flag"), [("gRPC", "--grpc-port"), ("HTTP", "--http-port")])
def test_a_port_in_use_is_one_line_on_stderr(front, flag, taken_port, tmp_path: Path):
    ports = {"--grpc-port": "0", "--http-port": "0", flag: str(taken_port)}
    command = [*SERVE, *(x for pair in ports.items() for x in pair)]
    command += ["--store", f"sqlite:///{tmp_path}/ops.db"]
    result = subprocess.run(
        command, capture_output=True, text=True, env=_env(), timeout=60, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"lro-server: cannot listen for {front} on 127.0.0.1:{taken_port}: it is in use; "
        f"choose another port with {flag} or LRO_{flag[2:].replace('-', '_').upper()}"
    ]
    assert result.stdout == ""  # no banner: nothing started


def test_serve_help_shows_every_default():
    text = subprocess.run(
        [*SERVE, "--help"], capture_output=True, text=True, env=_env(), check=True
    ).stdout
    flags = " ".join(text.split())  # argparse wraps to the terminal's width
    assert "--host HOST bind address of both fronts (LRO_HOST, default 127.0.0.1;" in flags
    assert "(LRO_GRPC_PORT, default 50051)" in flags
    assert "(LRO_HTTP_PORT, default 8080; -1 disables it)" in flags
    assert "(LRO_STORE, default sqlite:///var/lro.db)" in flags
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = '""' if default in ("", None, []) else str(default)
        assert f"LRO_{name.upper()}={shown}" in text, name
