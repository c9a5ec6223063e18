"""The whole checker on transcripts recorded from real engines: every claim's verdict, positive and negative."""

from __future__ import annotations

import pytest

from tests.unit.replay import engines, replay, transcript
from tests.variants import VARIANTS

CASES = [(engine, scenario) for engine in engines() for scenario in ["pass", *sorted(VARIANTS)]
         if transcript(engine, scenario).exists()]


@pytest.mark.parametrize("engine,scenario", CASES)
def test_replayed_run_gives_the_recorded_verdicts(engine, scenario, tmp_path):
    report = replay(engine, scenario, tmp_path)
    failing = {c.id for c in report.claims if c.verdict != "pass"}
    expected = set() if scenario == "pass" else VARIANTS[scenario][1]
    assert failing == expected, [(c.id, c.verdict, c.observed) for c in report.claims]
    if scenario != "exits-at-once":  # (its containers are gone by the time `du` lists their directories)
        assert all(s.status == "passed" for s in report.steps)
    assert len(report.claims) == 10
    for claim in report.claims:
        assert claim.expected and claim.observed
        assert bool(claim.hint) == (claim.verdict != "pass")


def test_every_engine_has_a_passing_transcript():
    assert engines(), "no transcripts recorded"
    for engine in engines():
        assert transcript(engine, "pass").exists()


def test_observed_values_of_a_passing_run(tmp_path):
    report = replay("e1-bookworm-docker20", "pass", tmp_path)
    claims = {c.id: c for c in report.claims}
    assert len(claims["layers-pulled-separately"].details["reported"]) == 3
    assert len(claims["base-layers-shared"].details["base_layers"]) == 4
    sizes = claims["image-sizes-equal"].details["sizes"]
    assert sizes["image"] == sizes["base"] == sizes["pulled"] + claims["image-sizes-equal"].details["files"]
    assert {c["size_rw"] for c in claims["container-writable-layer-small"].details["containers"]} == {0}
    assert set(claims["container-dirs-small"].details["dirs"].values()) == {36 * 1024}
    formula = claims["disk-total-formula"].details
    assert formula["growth"] == formula["after"] - formula["before"] > 0
    assert report.engine.storage_driver == "overlay2" and report.engine.server_version.startswith("20.10")
    assert report.notes[-1] == "removed the image(s) the lab pulled (ubuntu:18.04)"


# What each engine prints differently from the lab's text (E1 is the engine the lab was written for).
DIFFERENCES = {
    "e1-bookworm-docker20": set(),
    "e2-trixie-docker26-buildkit": {"build-steps", "history-ids"},
    "e3-trixie-docker26-containerd": {"pull-complete-lines", "layers-in-overlay2", "build-steps", "history-ids",
                                      "same-size-field", "writable-0b", "virtual-is-image-size"},
    "e4-sid-docker28-buildkit": {"build-steps", "history-ids"},
    # Docker 28 on the containerd store prints `Pull complete` per layer again.
    "e5-sid-docker28-containerd": {"layers-in-overlay2", "build-steps", "history-ids", "same-size-field",
                                   "writable-0b", "virtual-is-image-size"},
}
ENGINES = {
    "e1-bookworm-docker20": ("overlay2", "legacy", "20.10"),
    "e2-trixie-docker26-buildkit": ("overlay2", "buildkit", "26.1"),
    "e3-trixie-docker26-containerd": ("containerd", "buildkit", "26.1"),
    "e4-sid-docker28-buildkit": ("overlay2", "buildkit", "28.5"),
    "e5-sid-docker28-containerd": ("containerd", "buildkit", "28.5"),
}


@pytest.mark.parametrize("engine", sorted(DIFFERENCES))
def test_lab_text_differences_per_engine(engine, tmp_path):
    report = replay(engine, "pass", tmp_path)
    assert {s.id for s in report.differences} == DIFFERENCES[engine]
    assert all(s.verdict != "error" for s in report.statements)
    for statement in report.differences:
        assert statement.observed  # what is true instead
    from checker.reporters.console import render

    text = render(report, 0)
    if DIFFERENCES[engine]:
        assert f"The lab's text vs this engine ({len(DIFFERENCES[engine])} statement(s) do not hold" in text
    else:
        assert "The lab's text holds as written on this engine." in text


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_engine_is_detected(engine, tmp_path):
    report = replay(engine, "pass", tmp_path)
    store, builder, version = ENGINES[engine]
    assert report.engine.image_store == store
    assert report.engine.builder == builder
    assert report.engine.server_version.startswith(version)


def test_containerd_store_claims_use_engine_true_data(tmp_path):
    report = replay("e3-trixie-docker26-containerd", "pass", tmp_path)
    claims = {c.id: c for c in report.claims}
    assert "committed snapshots" in claims["layers-stored-in-driver-dir"].observed
    sizes = claims["image-sizes-equal"].details
    assert sizes["sizes"]["image"] == sizes["sizes"]["base"]
    assert sizes["size_fields"]["image"] != sizes["size_fields"]["base"]  # Size counts compressed blobs there
    assert {c["size_rw"] for c in claims["container-writable-layer-small"].details["containers"]} == {4096}
    assert any("build cache record" in note for note in report.notes)


def test_replay_does_not_depend_on_this_machine(tmp_path, monkeypatch):
    """Transcripts recorded on one machine replay on another (CI): other host name, user, clock."""
    import getpass
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "some-ci-runner")
    monkeypatch.setattr(getpass, "getuser", lambda: "runner")
    report = replay("e1-bookworm-docker20", "pass", tmp_path)
    assert report.passed


@pytest.mark.parametrize("engine", engines())
def test_observe_mode_after_the_courses_own_steps(engine, tmp_path):
    """Recorded after a scripted student typed the course's commands, `--rm` and its stop included: every
    claim is judged from what the engine still holds (the images, its event log), except the sizes of the
    containers the stop removed, which are not judged, with the reason and what to do."""
    report = replay(engine, "observe", tmp_path)
    verdicts = {c.id: c.verdict for c in report.claims}
    gone = {"container-writable-layer-small", "container-dirs-small", "disk-total-formula"}
    assert {cid for cid, v in verdicts.items() if v != "pass"} == gone
    assert {verdicts[cid] for cid in gone} == {"error"}
    claims = {c.id: c for c in report.claims}
    for cid in gone:
        assert "--watch" in claims[cid].hint and "no longer exist" in claims[cid].observed
    assert "event log" in claims["five-containers-running"].observed
    assert "removed by --rm" in claims["containers-stopped"].observed
    assert "judged from the stored image" in claims["layers-pulled-separately"].observed
    steps = {s.step_id: s.status for s in report.steps}
    assert {k for k, v in steps.items() if v == "skipped"} == {"pull", "build-base", "build-image", "run", "stop"}
    assert report.notes == []  # nothing was removed: it is the student's work
    assert report.fingerprint["changes"] == []  # the engine's log: nothing changed while observe mode looked
    # Statements that need a step's own output are not judged in observe mode, never "wrong".
    judged = {s.id for s in report.statements if s.verdict != "error"}
    assert "pull-complete-lines" not in judged and "build-steps" not in judged
