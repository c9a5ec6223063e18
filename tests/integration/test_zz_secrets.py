"""Runs last (file order): nothing the suite wrote (reports, logs, transcripts) holds private key material."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.testenv import env as testenv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KEY_NAMES = {"private_key", "wrong_key", "insecure_private_key"}


def key_fragments(roots: list[Path]) -> set[str]:
    """A middle slice of every private key the suite used: Vagrant's insecure key and each machine's."""
    keys = [p for root in roots if root.exists() for p in root.rglob("*") if p.name in KEY_NAMES and p.is_file()]
    listing = subprocess.run(["dpkg", "-L", "vagrant"], capture_output=True, text=True).stdout
    keys += [Path(line) for line in listing.splitlines() if line.endswith("/keys/vagrant")]
    fragments = set()
    for key in keys:
        body = "".join(line for line in key.read_text(errors="replace").splitlines() if "-----" not in line)
        if len(body) > 80:
            fragments.add(body[len(body) // 2: len(body) // 2 + 40])
    return fragments


def test_no_private_key_material_in_reports_and_logs(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    roots = [base, testenv.RUN, REPO / "tests" / "transcripts"]
    fragments = key_fragments([base])
    assert fragments  # there were keys to look for
    scanned = 0
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if not path.is_file() or path.name in KEY_NAMES or path.stat().st_size > 50_000_000:
                continue
            if path.suffix not in (".json", ".xml", ".log", ".txt", ".out", "") and "log" not in path.name:
                continue
            try:
                text = path.read_text(errors="replace")
            except OSError:  # sockets, pipes and the like under the engine's run folder
                continue
            scanned += 1
            assert not re.search(r"PRIVATE KEY-----", text), path
            for fragment in fragments:
                assert fragment not in text, path
    assert scanned > 10
