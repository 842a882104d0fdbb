"""A loopback HTTP proxy in front of the server's HTTP front: records calls, injects faults."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


class FaultProxy:
    """Forwards every request to ``upstream``; ``fail(path_regex, status, times)`` makes the
    next matching requests answer ``status`` without reaching the server."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: list[tuple[str, dict[str, str], int]] = []
        self._rules: list[list[Any]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy._handle(self)

            def do_GET(self) -> None:
                proxy._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, path_regex: str, status: int, times: int) -> None:
        with self._lock:
            self._rules.append([re.compile(path_regex), status, times])

    def count(self, path_part: str, status: int | None = None) -> int:
        return sum(1 for p, _h, s in list(self.calls) if path_part in p and status in (None, s))

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items()}
        status = 0
        with self._lock:
            for rule in self._rules:
                if rule[2] > 0 and rule[0].search(handler.path):
                    rule[2] -= 1
                    status = rule[1]
                    break
        if status:
            payload = b'{"error": {"code": %d, "status": "UNAVAILABLE"}}' % status
            self.calls.append((handler.path, headers, status))
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        forwarded = {
            k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = requests.request(
            handler.command, self.upstream + handler.path, data=body, headers=forwarded, timeout=30
        )
        self.calls.append((handler.path, headers, answer.status_code))
        handler.send_response(answer.status_code)
        handler.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        handler.send_header("Content-Length", str(len(answer.content)))
        handler.end_headers()
        handler.wfile.write(answer.content)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
