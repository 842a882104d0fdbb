"""The README's examples run as written against a live server and the simulator."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
UUID = re.compile(r"operations/[0-9a-f-]{36}")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_python_example_runs(server, sim, create_job):
    job_id = create_job("readme")
    (code,) = [b for b in _blocks("python") if "from_gapic" in b]
    code = code.replace("localhost:50051", server.grpc_target)
    code = code.replace("job_id=1", f"job_id={job_id}")
    printed: list[str] = []
    exec(
        compile(code, "README.md", "exec"),
        {"print": lambda *a: printed.append(" ".join(str(x) for x in a))},
    )
    assert printed and "SUCCESS" in printed[0]


def _curl_commands(block: str) -> list[list[str]]:
    text = block.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        command = line.split("  #", 1)[0].strip()
        if command.startswith("curl "):
            commands.append(shlex.split(command))
    return commands


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_examples_answer(server, sim, create_job):
    job_id = create_job("curl")
    (block,) = [b for b in _blocks("sh") if "8080/lro.databricks.v1.Jobs/RunNow" in b]
    commands = _curl_commands(block)
    assert len(commands) >= 6
    name = ""
    for template in commands:
        command = [
            part.replace("http://127.0.0.1:8080", server.http_url)
            .replace('"job_id": 1', f'"job_id": {job_id}')
            .replace("operations/5f0c…", name)
            for part in template
        ]
        answer = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
        assert answer.returncode == 0, (command, answer.stderr)
        if not name:
            found = UUID.search(answer.stdout)
            assert found, answer.stdout
            name = found.group(0)
        assert '"error"' not in answer.stdout, (command, answer.stdout)
