"""`lro-server serve` as a user runs it: a real process, its banner, SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

BANNER = re.compile(r"gRPC on [\d.]+:(\d+), HTTP/JSON on http://[\d.]+:(\d+)")


def test_serve_prints_where_it_listens_and_stops_on_sigterm(tmp_path: Path):
    env = {**os.environ, "LRO_HOST": "127.0.0.1", "LRO_LOG_FORMAT": "json"}
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
        http_port = int(match.group(2))
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
