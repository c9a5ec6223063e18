"""The course's labs 02-06, 08-10 and 16 replayed from transcripts of real runs (tests/record_course.py):
the runner, parsers, probes and the checks of networks, volumes, tables and text, with no machine.
Each lab as the course prints it passes; each negative fails exactly the claims it makes false."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker import lab as labs
from checker.runner import Runner
from checker.transcript import ReplayTransport
from tests.student import OBSERVED
from tests.variants import COURSE_VARIANTS, make_course_variant

COURSE = Path(__file__).resolve().parent.parent / "transcripts" / "course"
VARIANTS = {v.id: v for v in COURSE_VARIANTS}
CASES = sorted((p.parent.name, p.stem) for p in COURSE.glob("*/*.json")) if COURSE.is_dir() else []


def replay(path: Path, tmp_path: Path):
    meta = json.loads(path.read_text())["meta"]
    variant = VARIANTS.get(meta.get("variant", ""))
    lab = labs.load(make_course_variant(variant, tmp_path)) if variant else labs.find(meta["lab"])
    plan = labs.Plan(lab, lab.values({k: str(v) for k, v in meta.get("values", {}).items()
                                      if k in lab.variables}))
    args = list(variant.args) if variant else []
    factor = float(args[args.index("--timeout-factor") + 1]) if "--timeout-factor" in args else 1.0
    return Runner(plan, ReplayTransport(path), observe=bool(meta.get("observe")), timeout_factor=factor).run(), variant


@pytest.mark.parametrize("engine,scenario", CASES)
def test_replayed_course_run_gives_the_verdicts_of_its_world(engine, scenario, tmp_path):
    report, variant = replay(COURSE / engine / f"{scenario}.json", tmp_path)
    got = {c.id: c.verdict for c in report.claims}
    detail = [(c.id, c.verdict, c.observed) for c in report.claims]
    if scenario.endswith("-observe"):  # after a scripted student (tests/student.py): what is left, judged
        lab = scenario[:2]
        assert {cid for cid, v in got.items() if v == "pass"} == OBSERVED[lab], detail
        assert set(got.values()) <= {"pass", "error"}, detail
        assert report.fingerprint["changes"] == []
    elif variant is None:
        assert set(got.values()) == {"pass"}, detail
        assert all(s.status == "passed" for s in report.steps)
    else:
        assert {cid for cid, v in got.items() if v == "fail"} == variant.fails, detail
        assert {cid for cid, v in got.items() if v == "error"} == variant.not_judged, detail
    for claim in report.claims:
        assert claim.expected and claim.observed
        assert bool(claim.hint) == (claim.verdict != "pass")


def test_every_course_lab_and_negative_has_a_transcript():
    engines = {engine for engine, _ in CASES}
    assert engines, "no transcripts of the course's labs recorded (python -m tests.record_course NAME)"
    for engine in engines:
        recorded = {scenario for e, scenario in CASES if e == engine}
        assert set(VARIANTS) <= recorded
        labs_with_claims = {v.lab[:2] for v in COURSE_VARIANTS}
        assert {f"{lab}-pass" for lab in labs_with_claims} <= recorded


def test_a_row_the_labs_own_step_removes_is_not_judged_in_observe_mode_only():
    from checker.claims.tables import table_rows
    from checker.facts import Facts, MissingFact
    from checker.records import Result, StepFact

    listing = "DRIVER    VOLUME NAME\n"  # `docker volume ls` once the lab's last step removed my-vol
    where = {"VOLUME NAME": "^my-vol$"}
    for observe in (False, True):
        facts = Facts(observe=observe)
        facts.steps["ls"] = StepFact("ls", "ls", "docker volume ls", "passed", Result(0, listing, "", 0.1), [])
        if observe:
            with pytest.raises(MissingFact) as caught:
                table_rows(facts, "ls", where, removed_later="rm-again")
            assert "rm-again" in str(caught.value) and "--watch" in caught.value.what_to_do
        else:
            assert table_rows(facts, "ls", where, removed_later="rm-again").ok is False


def test_observe_mode_says_why_it_cannot_judge_and_finds_the_students_work():
    """Lab 02 after a student: the log of their container (found by its image, `docker ps -a --filter
    ancestor=…`) shows the request; the page itself went to their terminal, so its claims are not judged,
    and say that observe mode did not run the step. Lab 05: their class, in their clone of the course."""
    report, _ = replay(COURSE / "e1-bookworm-docker20" / "02-observe.json", None)
    claims = {c.id: c for c in report.claims}
    assert "changes the machine, so observe mode did not run it" in claims["hello-world-page"].observed
    steps = {s.step_id: s for s in report.steps}
    assert steps["logs"].status == "passed" and steps["logs"].command.startswith("docker logs ")
    assert steps["run"].status == "skipped"
    report, _ = replay(COURSE / "e1-bookworm-docker20" / "05-observe.json", None)
    steps = {s.step_id: s for s in report.steps}
    assert steps["ls"].command.startswith("ls -l /home/") and "/labs/05-Bind_mounts/app" in steps["ls"].command

