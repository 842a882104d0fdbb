"""The committed lro_server/_proto and protos/descriptor_set.pb are exactly what
scripts/gen_protos.py makes of protos/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "lro_server" / "_proto"


def _files(root: Path) -> set[Path]:
    return {
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_generated_code_matches_protos(tmp_path: Path):
    out = tmp_path / "_proto"
    published = tmp_path / "descriptor_set.pb"
    script = str(ROOT / "scripts" / "gen_protos.py")
    subprocess.run(
        [sys.executable, script, "--out", str(out), "--descriptor-set", str(published)],
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    assert published.read_bytes() == (ROOT / "protos" / "descriptor_set.pb").read_bytes(), (
        "regenerate with `python scripts/gen_protos.py`: protos/descriptor_set.pb"
    )
    generated, committed = _files(out), _files(COMMITTED)
    assert generated, "the generator produced nothing"
    assert sorted(map(str, generated - committed)) == [], "generated but not committed"
    assert sorted(map(str, committed - generated)) == [], "committed but no longer generated"
    stale = sorted(
        str(p) for p in generated if not filecmp.cmp(out / p, COMMITTED / p, shallow=False)
    )
    assert stale == [], f"regenerate with `python scripts/gen_protos.py`: {stale}"
