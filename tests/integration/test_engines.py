"""Lab 07 on five Docker engines, each in a container VM: every claim passes, checked in the form true
on that engine, and the report lists where the lab's text does not hold as written.

E1 Debian bookworm docker.io 20.10: legacy builder, overlay2 (the engine the lab was written for).
E2 Debian trixie docker.io 26.1 + docker-buildx: BuildKit, overlay2.
E3 E2 with the containerd image store (LAB_IMAGE_STORE=containerd, set by the provisioner).
E4 Debian unstable docker.io 28.5 with containerd 2.1 and docker-buildx 0.29: BuildKit, overlay2.
E5 E4 with the containerd image store (what Docker 29 uses by default).
The five run the lab once, at once (`check-lab course --targets`, as `scripts/drift` does), and each engine's
report is judged from that run (the soak repeats the lab on E1, and the unit tests replay every engine's
recorded runs, the console's "lab's text vs this engine" among them), to keep the suite within its hour.
"""

from __future__ import annotations

import json

import pytest

from tests import engines
from tests.integration.test_engine_api import assert_the_forms_agree

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
def drift(lab_env, tmp_path_factory):
    """`scripts/drift --labs 07`'s run (tests/engines.py): a container VM per engine, brought up together, and
    `check-lab course --targets` over the five at once, its JSON read by `check-lab drift`; the folder with
    engines.json (each engine's report of lab 07) and drift.json."""
    out = tmp_path_factory.mktemp("drift")
    with engines.machines(lab_env, tmp_path_factory.mktemp("engines"), engines.DOCKER_LABELS) as projects:
        assert engines.course_drift(projects, "07", out) == 0, (out / "engines.json").read_text()[-3000:]
        # (Observe mode's probes through the Engine API against the docker command, while the machines are up.)
        for label in ("E2", "E3", "E4", "E5"):
            ssh = projects[label].ssh()
            try:
                assert_the_forms_agree(ssh)
            finally:
                ssh.close()
    return out


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_all_claims_hold_on_each_engine(name, drift):
    differences, (store, builder) = ENGINES[name]
    courses = {t["label"]: t["course"] for t in json.loads((drift / "engines.json").read_text())["targets"]}
    [run] = courses[name.upper()]["targets"]
    data = run["report"]
    assert run["exit_code"] == 0 and data["result"] == "pass", data["claims"]
    assert data["engine"]["image_store"] == store and data["engine"]["builder"] == builder
    assert all(c["verdict"] == "pass" for c in data["claims"]), data["claims"]
    assert {d["id"] for d in data["lab_vs_engine"] if not d["holds"]} == differences


def test_the_drift_report_marks_each_sentence_on_the_engines_where_it_does_not_hold(drift):
    """One column per engine, each sentence of lab 07 that does not hold there marked so."""
    table = json.loads((drift / "drift.json").read_text())
    labels = [name.upper() for name in sorted(ENGINES)]
    assert [e["label"] for e in table["engines"]] == labels
    [lab] = table["labs"]
    assert all(c["on"][e]["verdict"] == "pass" for c in lab["claims"] for e in labels)
    for statement in lab["statements"]:
        assert {e for e in labels if not statement["on"][e]["holds"]} == \
            {name.upper() for name, (differences, _e) in ENGINES.items() if statement["id"] in differences}
    assert (drift / "drift.md").read_text().startswith("#") and "<table" in (drift / "drift.html").read_text()
