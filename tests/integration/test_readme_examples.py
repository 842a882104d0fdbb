"""The README's examples run as pasted: its simulator command and its `make run` line start the
stack (on free ports instead of 8765, 50051 and 8080), then its `lro`, Python, chain and curl
examples run against it, demo job 1 included."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
UUID = re.compile(r"operations/[0-9a-f-]{36}")
PLACEHOLDER = "operations/5f0c…"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def _lines(block: str) -> list[str]:
    """The commands of a shell block: continuations joined, comments dropped."""
    text = block.replace("\\\n", " ")
    return [line.split("  #", 1)[0].strip() for line in text.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """The README's simulator and server, on free ports."""

    sim_port: int
    grpc_port: int
    http_port: int

    def pasted(self, text: str) -> str:
        """A README line with this stack's ports."""
        return (
            text.replace("8765", str(self.sim_port))
            .replace("localhost:50051", f"127.0.0.1:{self.grpc_port}")
            .replace("127.0.0.1:8080", f"127.0.0.1:{self.http_port}")
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LRO_", "MAKE", "MFLAGS"))}
        return {**env, "LRO_SERVER": f"127.0.0.1:{self.grpc_port}"}


def _start(command: str, env: dict[str, str], ready: str) -> subprocess.Popen[str]:
    assignments = {}
    words = shlex.split(command)
    while "=" in words[0] and not words[0].startswith("-"):
        key, value = words.pop(0).split("=", 1)
        assignments[key] = value
    process = subprocess.Popen(
        words,
        cwd=ROOT,
        env={**env, **assignments},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # `make run` starts the server as its child: one group
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if ready in line:
            return process
    raise AssertionError(f"{command!r} exited: {''.join(seen)}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the group this test started
        process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not (ROOT / ".venv" / "bin" / "lro-server").exists():
        pytest.skip("the README's commands run from the project's .venv (make builds it)")
    stack = Stack(_free_port(), _free_port(), _free_port())
    (block,) = [b for b in _blocks("sh") if "simulate-databricks --port 8765" in b]
    simulator, server = (stack.pasted(line) for line in _lines(block))
    env = stack.env()
    store = tmp_path_factory.mktemp("readme") / "lro.db"
    server_env = {
        **env,
        "LRO_GRPC_PORT": str(stack.grpc_port),
        "LRO_HTTP_PORT": str(stack.http_port),
        "LRO_STORE": f"sqlite:///{store}",
    }
    sim = _start(simulator, env, "Databricks simulator listening")
    try:
        lro = _start(server, server_env, "lro-server: gRPC on")
        try:
            yield stack
        finally:
            _stop(lro)
    finally:
        _stop(sim)


def _run(stack: Stack, command: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        shlex.split(command),
        cwd=ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result


def test_lro_examples(stack):
    (block,) = [b for b in _blocks("sh") if ".venv/bin/lro run-now 1 --wait" in b]
    name = ""
    for line in _lines(block):
        command = stack.pasted(line).replace(PLACEHOLDER, name)
        result = _run(stack, command)
        if "run-now 1 --param" in line:
            name = result.stdout.strip()
            assert UUID.fullmatch(name), result.stdout
        if "run-now 1 --wait" in line:
            assert "tasks 4/4 done" in result.stdout and "succeeded" in result.stdout


def test_chain_example(stack, tmp_path: Path):
    (definition,) = _blocks("json")
    chain = tmp_path / "chain.json"
    chain.write_text(definition)
    (block,) = [b for b in _blocks("sh") if "lro chain --file chain.json" in b]
    (line,) = _lines(block)
    result = _run(stack, stack.pasted(line).replace("chain.json", str(chain)))
    assert "steps 2/2 done" in result.stdout and "succeeded" in result.stdout


def test_python_example(stack):
    (code,) = [b for b in _blocks("python") if "from lro_server.client import Client" in b]
    printed: list[str] = []
    exec(
        compile(stack.pasted(code), "README.md", "exec"),
        {"print": lambda *a: printed.append(" ".join(str(x) for x in a))},
    )
    assert printed and printed[0].endswith(" SUCCESS")
    assert printed[0].startswith(f"http://127.0.0.1:{stack.sim_port}/#job/1/run/")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_examples(stack):
    (block,) = [b for b in _blocks("sh") if "8080/lro.databricks.v1.Jobs/RunNow" in b]
    commands = [line for line in _lines(block) if line.startswith("curl ")]
    assert len(commands) >= 6
    name = ""
    for template in commands:
        result = _run(stack, stack.pasted(template).replace(PLACEHOLDER, name))
        if not name:
            found = UUID.search(result.stdout)
            assert found, result.stdout
            name = found.group(0)
        assert '"error"' not in result.stdout, (template, result.stdout)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_simulator_release_example(stack):
    (line,) = re.findall(
        r"`(curl -X POST http://127\.0\.0\.1:8765/_sim/runs/release)`", README.read_text()
    )
    assert _run(stack, stack.pasted(line)).stdout.strip() == '{"released": []}'
