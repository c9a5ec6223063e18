"""Lab 11 on three machines, replayed from transcripts of real runs (tests/record_swarm.py): one transcript
per machine, replayed through the whole checker (MachinesRunner, one Runner per machine, shared facts and
captured values, the claims)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker import lab as labs
from checker.facts import Facts
from checker.records import Result, StepFact
from checker.runner import MachinesRunner
from checker.transcript import ReplayTransport
from tests.variants import SWARM_VARIANTS, make_course_variant

SWARM = Path(__file__).resolve().parent.parent / "transcripts" / "swarm"
MACHINES = ("swarmmanager", "swarmnode1", "swarmnode2")
VARIANTS = {v.id: v for v in SWARM_VARIANTS}
CASES = sorted({(p.parent.name, p.name.split(".")[0]) for p in SWARM.glob("*/*.swarmmanager.json")})


def replay(engine: str, scenario: str, tmp_path: Path):
    paths = {m: SWARM / engine / f"{scenario}.{m}.json" for m in MACHINES}
    meta = json.loads(paths["swarmmanager"].read_text())["meta"]
    variant = VARIANTS.get(meta.get("variant", ""))
    lab = labs.load(make_course_variant(variant, tmp_path)) if variant else labs.find("11")
    plan = labs.Plan(lab, lab.values({k: str(v) for k, v in meta.get("values", {}).items() if k in lab.variables}))
    return MachinesRunner(plan, {m: ReplayTransport(p) for m, p in paths.items()}).run(), variant


@pytest.mark.parametrize("engine,scenario", CASES)
def test_replayed_swarm_run_gives_the_verdicts_of_its_world(engine, scenario, tmp_path):
    report, variant = replay(engine, scenario, tmp_path)
    got = {c.id: c.verdict for c in report.claims}
    detail = [(c.id, c.verdict, c.observed) for c in report.claims]
    mesh = got.pop("routing-mesh")
    if variant is not None and "routing-mesh" in variant.not_judged:
        assert mesh == "error", detail
        got["routing-mesh"] = mesh
    else:
        assert mesh in ("pass", "n/a"), detail  # n/a: recorded on container VMs of a kernel without IP_VS
    if variant is None:
        assert set(got.values()) == {"pass"}, detail
        assert all(s.status == "passed" for s in report.steps)
        assert report.passed
    else:
        assert {cid for cid, v in got.items() if v == "fail"} == variant.fails, detail
        assert {cid for cid, v in got.items() if v == "error"} == variant.not_judged, detail
    steps = {s.step_id: s for s in report.steps}
    assert steps["join-node1"].title.endswith("(on swarmnode1)")
    if variant is not None and "join-node1" in variant.steps:
        return
    token = steps["init"].result.stdout.split("--token ")[1].split()[0]
    assert token in steps["join-node1"].command  # the value captured on one machine, used on another


def test_every_swarm_scenario_has_transcripts():
    assert CASES, "no transcripts of lab 11 recorded (python -m tests.record_swarm NAME)"
    for engine in {engine for engine, _ in CASES}:
        recorded = {scenario for e, scenario in CASES if e == engine}
        assert {"11-pass", *VARIANTS} <= recorded


def _step(step_id: str, title: str, stdout: str) -> StepFact:
    return StepFact(step_id, title, "…", "passed", Result(0, stdout, "", 0.1), [])


def _mesh_facts(kernels: tuple[str, str, str], answers: str) -> Facts:
    facts = Facts()
    for machine, kernel in zip(MACHINES, kernels):
        facts.steps[f"ipvs-{machine}"] = _step(f"ipvs-{machine}", f"IP_VS (on {machine})", kernel + "\n")
    facts.steps["mesh"] = _step("mesh", "Port 4000 of every node (on swarmmanager)", answers)
    return facts


def test_the_routing_mesh_is_judged_where_the_kernel_has_ip_vs_and_not_applicable_elsewhere():
    from checker import checks

    lab = labs.find("11")
    plan = labs.Plan(lab, lab.values({}))
    claims, _ = plan.judged({"captured.token": "t", "captured.join_address": "a"})
    mesh = [c for c in claims if c.id == "routing-mesh"]
    every = "swarmmanager: Welcome to nginx!\nswarmnode1: Welcome to nginx!\nswarmnode2: Welcome to nginx!\n"
    one_silent = every.replace("swarmnode2: Welcome to nginx!", "swarmnode2: no answer")
    [held] = checks.evaluate(mesh, _mesh_facts(("ip_vs",) * 3, every))
    [failed] = checks.evaluate(mesh, _mesh_facts(("ip_vs",) * 3, one_silent))
    [elsewhere] = checks.evaluate(mesh, _mesh_facts(("ip_vs", "none", "none"), one_silent))
    assert held.verdict == "pass"
    assert failed.verdict == "fail" and "swarmnode2" in failed.observed and failed.hint
    assert elsewhere.verdict == "n/a" and "swarmnode1, swarmnode2" in elsewhere.observed
    assert "IP_VS" in elsewhere.observed and (elsewhere.points, elsewhere.max_points) == (0.0, 0.0)
