"""The course's labs on Podman (engine E6: sid's Podman 5.8 through podman-docker, rootless, in a container
VM) replayed from transcripts of real runs (`check-lab NN --record`, tests/transcripts/podman/): every claim
holds in its Podman form, or is not applicable here with the engine's reason; a step the engine cannot run
(`needs:`) is not run, and is no failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.exitcodes import for_run
from tests.unit.replay import replay_lab

PODMAN = Path(__file__).resolve().parent.parent / "transcripts" / "podman" / "e6-sid-podman"
# What Podman lacks, lab by lab (records.ENGINE_FEATURES), as the labs' `needs:` say; the ping claims are not
# applicable where the engine's containers cannot open an ICMP socket (measured: the run's own ping says so).
NOT_APPLICABLE = {
    "01": set(),
    "06": {"access-log-grows", "empty-after-restart"},
    "07": {"layers-stored-in-driver-dir", "container-dirs-small", "disk-total-formula"},
    "08": {"network-unreachable"},
    "09": {"bridge-address", "out-through-the-bridge", "own-subnet", "resolves-on-own-network",
           "second-interface", "reachable-when-connected", "unreachable-when-disconnected"},
    "10": {"bridge-needs-p"},
    "13": {"mysql-running", "wordpress-running", "install-page", "db-on-volume", "down-removes-everything"},
}


def replay(lab_id: str):
    return replay_lab(PODMAN / f"{lab_id}-pass.json")


@pytest.mark.parametrize("lab_id", sorted(NOT_APPLICABLE))
def test_a_lab_on_podman_passes_in_podmans_form_or_says_what_podman_lacks(lab_id):
    report = replay(lab_id)
    assert report.engine.podman and report.engine.rootless
    detail = [(c.id, c.verdict, c.observed) for c in report.claims]
    assert {c.id for c in report.claims if c.verdict == "n/a"} == NOT_APPLICABLE[lab_id], detail
    assert {c.verdict for c in report.claims} <= {"pass", "n/a"}, detail
    assert all(c.observed.startswith("not applicable here: ") for c in report.claims if c.verdict == "n/a")
    assert report.passed and for_run(report) == 0
    for s in report.steps:  # skipped: the engine lacks what the step needs, said in its error
        assert s.status == "passed" or (s.status == "skipped" and s.error.startswith("not applicable here: "))


def test_a_lab_podman_cannot_run_at_all_runs_none_of_its_steps_and_fails_nothing():
    report = replay("13")
    assert {s.status for s in report.steps} == {"skipped"}
    assert all("docker-compose" in s.error for s in report.steps)
    assert {s.verdict for s in report.statements} == {"n/a"}
    from checker import drift
    from checker.drift import EngineRuns

    data = drift.table([EngineRuns("E6", report.engine.describe(), {"13": report})])
    cells = {st["id"]: st["on"]["E6"] for st in data["labs"][0]["statements"]}
    assert all(not c["applies"] and not c["judged"] for c in cells.values())
    assert "| n/a |" in drift.markdown(data) and 'data-holds="n/a"' in drift.page(data)
