"""Lab 07 on five Docker engines, each in a container VM: every claim passes, checked in the form true
on that engine, and the report lists where the lab's text does not hold as written.

E1 Debian bookworm docker.io 20.10: legacy builder, overlay2 (the engine the lab was written for).
E2 Debian trixie docker.io 26.1 + docker-buildx: BuildKit, overlay2.
E3 E2 with the containerd image store (LAB_IMAGE_STORE=containerd, set by the provisioner).
E4 Debian unstable docker.io 28.5 with containerd 2.1 and docker-buildx 0.29: BuildKit, overlay2.
E5 E4 with the containerd image store (what Docker 29 uses by default).
Each engine runs the lab once (the soak repeats it on E1 and the unit tests replay every engine's recorded runs),
to keep the suite within its hour.
"""

from __future__ import annotations

import json

import pytest

from tests import engines
from tests.integration.conftest import run_check

pytestmark = pytest.mark.integration

# engine -> (the lab's sentences that do not hold there, (image store, builder))
ENGINES = {
    "e1": (set(), ("overlay2", "legacy")),
    "e2": ({"build-steps", "history-ids"}, ("overlay2", "buildkit")),
    "e3": ({"pull-complete-lines", "layers-in-overlay2", "build-steps", "history-ids", "same-size-field",
            "writable-0b", "virtual-is-image-size"}, ("containerd", "buildkit")),
    "e4": ({"build-steps", "history-ids"}, ("overlay2", "buildkit")),
    # Docker 28 on the containerd store prints `Pull complete` per layer again (26 printed `Download complete`).
    "e5": ({"layers-in-overlay2", "build-steps", "history-ids", "same-size-field", "writable-0b",
            "virtual-is-image-size"}, ("containerd", "buildkit")),
}


@pytest.fixture(scope="module")
def machines(lab_env, tmp_path_factory):
    """A container VM per engine (tests/engines.py), for the module, brought up together."""
    with engines.machines(lab_env, tmp_path_factory.mktemp("engines")) as projects:
        yield {label.lower(): project for label, project in projects.items()}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_all_claims_hold_on_each_engine(name, machines, monkeypatch, capsys):
    differences, (store, builder) = ENGINES[name]
    project = machines[name]
    report = project.root / "r1.json"
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


def test_the_course_on_every_engine_at_once_gives_the_drift_report(machines, tmp_path):
    """`scripts/drift`'s run (tests/engines.py): `check-lab course --targets` over the five engines, its JSON read
    by `check-lab drift`: one column per engine, each sentence of lab 07 that does not hold there marked so."""
    projects = {name.upper(): project for name, project in sorted(machines.items())}
    assert engines.course_drift(projects, "07", tmp_path) == 0
    table = json.loads((tmp_path / "drift.json").read_text())
    labels = list(projects)
    assert [e["label"] for e in table["engines"]] == labels
    [lab] = table["labs"]
    assert all(c["on"][e]["verdict"] == "pass" for c in lab["claims"] for e in labels)
    for statement in lab["statements"]:
        assert {e for e in labels if not statement["on"][e]["holds"]} == \
            {name.upper() for name, (differences, _e) in ENGINES.items() if statement["id"] in differences}
    assert (tmp_path / "drift.md").read_text().startswith("#") and "<table" in (tmp_path / "drift.html").read_text()
