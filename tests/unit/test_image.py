"""The container image: the server's dependencies installed, listening on every interface."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "deploy" / "Dockerfile"


def test_the_image_installs_the_server_extra_and_listens_on_every_interface():
    text = DOCKERFILE.read_text()
    # The base install is the client only; the server needs its extra.
    assert re.search(r"pip install .*'\.\[server\]'", text)
    # lro-server binds 127.0.0.1 unless told otherwise; a container must say 0.0.0.0.
    assert re.search(r"^\s*LRO_HOST=0\.0\.0\.0\s*$", text, flags=re.M)
