"""Lab 07 on three Docker engines, each in a container VM: every claim passes, checked in the form true
on that engine, and the report lists where the lab's text does not hold as written.

E1 Debian bookworm docker.io 20.10: legacy builder, overlay2 (the engine the lab was written for).
E2 Debian trixie docker.io 26.1 + docker-buildx: BuildKit, overlay2.
E3 E2 with the containerd image store (LAB_IMAGE_STORE=containerd, set by the provisioner).
E4 Debian unstable docker.io 28.5 with containerd 2.1 and docker-buildx 0.29: BuildKit, overlay2.
E5 E4 with the containerd image store (what Docker 29 uses by default).
E1-E3 run the lab twice (the verdicts must not change); E4 and E5 once, to keep the suite within its hour.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import run_check
from tests.testenv import env as testenv

pytestmark = pytest.mark.integration

ENGINES = {
    "e1": ({}, set(), ("overlay2", "legacy")),
    "e2": (testenv.vm_settings("trixie"), {"build-steps", "history-ids"}, ("overlay2", "buildkit")),
    "e3": ({**testenv.vm_settings("trixie"), "LAB_IMAGE_STORE": "containerd"},
           {"pull-complete-lines", "layers-in-overlay2", "build-steps", "history-ids", "same-size-field",
            "writable-0b", "virtual-is-image-size"}, ("containerd", "buildkit")),
    "e4": (testenv.vm_settings("sid"), {"build-steps", "history-ids"}, ("overlay2", "buildkit")),
    "e5": ({**testenv.vm_settings("sid"), "LAB_IMAGE_STORE": "containerd"},
           {"pull-complete-lines", "layers-in-overlay2", "build-steps", "history-ids", "same-size-field",
            "writable-0b", "virtual-is-image-size"}, ("containerd", "buildkit")),
}
RUNS = {"e4": 1, "e5": 1}  # the others: 2


@pytest.fixture(scope="module")
def images(lab_env):
    return {suite: testenv.ensure_container_vm(lab_env, suite) for suite in ("trixie", "sid")}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_all_claims_hold_on_each_engine(name, project_factory, monkeypatch, capsys, images):
    extra, differences, (store, builder) = ENGINES[name]
    project = project_factory(name, extra)
    project.up()
    verdicts = []
    for run in range(1, RUNS.get(name, 2) + 1):
        report = project.root / f"r{run}.json"
        code = run_check(monkeypatch, project, "07", "--json", str(report))
        out = capsys.readouterr().out
        assert code == 0, out
        data = json.loads(report.read_text())
        assert data["engine"]["image_store"] == store and data["engine"]["builder"] == builder
        assert all(c["verdict"] == "pass" for c in data["claims"]), data["claims"]
        assert {d["id"] for d in data["lab_vs_engine"] if not d["holds"]} == differences
        if differences:
            assert "The lab's text vs this engine" in out
        else:
            assert "The lab's text holds as written on this engine." in out
        verdicts.append([(c["id"], c["verdict"]) for c in data["claims"]])
    assert all(v == verdicts[0] for v in verdicts)
