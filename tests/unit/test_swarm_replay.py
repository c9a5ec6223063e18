"""Labs 11 and 12 on three machines, replayed from transcripts of real runs (tests/record_swarm.py): one transcript
per machine, replayed through the whole checker (MachinesRunner, one Runner per machine, shared facts and
captured values, the claims)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from checker import lab as labs
from checker.facts import Facts
from checker.records import Result, StepFact
from checker.runner import MachinesRunner
from checker.transcript import ReplayTransport
from tests.student import OBSERVED_ON_MACHINES
from tests.variants import SWARM_VARIANTS, make_course_variant

SWARM = Path(__file__).resolve().parent.parent / "transcripts" / "swarm"
MACHINES = ("swarmmanager", "swarmnode1", "swarmnode2")
VARIANTS = {v.id: v for v in SWARM_VARIANTS}
CASES = sorted({(p.parent.name, p.name.split(".")[0]) for p in SWARM.glob("*/*.swarmmanager.json")})


class LateTransport(ReplayTransport):
    """A machine whose first answer comes late (a slower machine): its preflight ends after the others'."""

    def run(self, command, timeout: float = 60.0, on_line=None):
        if self.position == 0:
            time.sleep(0.3)
        return super().run(command, timeout, on_line)


def replay(engine: str, scenario: str, tmp_path: Path, transport=lambda machine, path: ReplayTransport(path)):
    paths = {m: SWARM / engine / f"{scenario}.{m}.json" for m in MACHINES}
    meta = json.loads(paths["swarmmanager"].read_text())["meta"]
    variant = VARIANTS.get(meta.get("variant", ""))
    lab = labs.load(make_course_variant(variant, tmp_path)) if variant else labs.find(scenario[:2])
    plan = labs.Plan(lab, lab.values({k: str(v) for k, v in meta.get("values", {}).items() if k in lab.variables}))
    transports = {m: transport(m, p) for m, p in paths.items()}
    return MachinesRunner(plan, transports, observe=bool(meta.get("observe"))).run(), variant


@pytest.mark.parametrize("engine,scenario", CASES)
def test_replayed_swarm_run_gives_the_verdicts_of_its_world(engine, scenario, tmp_path):
    report, variant = replay(engine, scenario, tmp_path)
    got = {c.id: c.verdict for c in report.claims}
    detail = [(c.id, c.verdict, c.observed) for c in report.claims]
    if scenario.endswith("-student-observe"):  # a student typed the lab as printed; observe mode looked
        assert {cid for cid, v in got.items() if v == "pass"} == OBSERVED_ON_MACHINES[scenario[:2]], detail
        assert "fail" not in got.values(), detail
        assert all(s.status in ("passed", "skipped") for s in report.steps)
        assert report.fingerprint["changes"] == []
        assert {line.split(":")[0] for line in report.fingerprint["since"].splitlines()} == set(MACHINES)
        return
    # The claims a kernel may lack what they need for (IP_VS, ESP): n/a on the container VMs they were recorded on.
    for needs_kernel in {"routing-mesh", "reaches-across-nodes"} & set(got):
        verdict = got.pop(needs_kernel)
        if variant is not None and needs_kernel in variant.not_judged:
            assert verdict == "error", detail
            got[needs_kernel] = verdict
        else:
            assert verdict in ("pass", "n/a"), detail
    if variant is None:
        assert set(got.values()) == {"pass"}, detail
        assert all(s.status == "passed" for s in report.steps)
        assert report.passed
    else:
        assert {cid for cid, v in got.items() if v == "fail"} == variant.fails, detail
        assert {cid for cid, v in got.items() if v == "error"} == variant.not_judged, detail
    steps = {s.step_id: s for s in report.steps}
    assert steps["join-node1"].title.endswith("(on swarmnode1)")
    if scenario.startswith("12"):  # each worker's bridge made before it joins, off the lab's subnet
        bridges = [steps[f"gwbridge-{m}"].result.stdout.split() for m in MACHINES[1:]]
        assert all(b[0] == "docker_gwbridge" and not b[1].startswith("172.19.") for b in bridges), bridges
    if variant is not None and "join-node1" in variant.steps:
        return
    token = steps["init"].result.stdout.split("--token ")[1].split()[0]
    assert token in steps["join-node1"].command  # the value captured on one machine, used on another


@pytest.mark.parametrize("scenario", ["11-pass", "12-student-observe"])
def test_the_report_names_the_engine_of_the_labs_first_machine(scenario, tmp_path):
    """The machines' preflights run at once; whichever ends last, the report's engine (and the facts' source of
    it) is the lab's first machine's, not the last one to answer."""
    for quick in MACHINES:  # the one machine that answers at once
        report, _variant = replay("e1-bookworm-docker20", scenario, tmp_path / quick,
                                  lambda m, p: ReplayTransport(p) if m == quick else LateTransport(p))
        assert report.engine.name == "swarmmanager", quick
        assert report.engine.engine_id in report.sources["engine"]["excerpt"], quick


def test_every_swarm_scenario_has_transcripts():
    assert CASES, "no transcripts of labs 11 and 12 recorded (python -m tests.record_swarm NAME)"
    for engine in {engine for engine, _ in CASES}:
        recorded = {scenario for e, scenario in CASES if e == engine}
        assert {"11-pass", "12-pass", "11-student-observe", "12-student-observe", *VARIANTS} <= recorded


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


def _reach_facts(esp: tuple[str, str], pings: str, options: dict | None = None) -> Facts:
    facts = Facts()
    for machine, kernel in zip(MACHINES[1:], esp):
        facts.steps[f"esp-{machine}"] = _step(f"esp-{machine}", f"ESP (on {machine})", kernel + "\n")
    network = [{"Name": "my-overlay-network", "Attachable": True,
                "Options": {"encrypted": ""} if options is None else options,
                "IPAM": {"Config": [{"Subnet": "172.19.0.0/16"}]}}]
    facts.steps["inspect-network"] = _step("inspect-network", "The network's settings", json.dumps(network))
    facts.steps["address"] = _step("address", "Its IP address (on swarmnode1)", "172.19.0.34\n")
    facts.steps["ping"] = _step("ping", "A container on swarmnode2 pings it (on swarmnode2)", pings)
    return facts


def test_reaching_across_nodes_is_judged_where_the_kernels_have_esp_and_not_applicable_elsewhere():
    """The live negative needs ESP on both workers (VMs with a distribution's kernel): here, the same
    check on the facts such a run gives."""
    from checker import checks

    lab = labs.find("12")
    plan = labs.Plan(lab, lab.values({}))
    claims, _ = plan.judged({"captured.token": "t", "captured.join_address": "a", "captured.ip": "172.19.0.34"})
    reach = [c for c in claims if c.id == "reaches-across-nodes"]
    answered = ("PING 172.19.0.34 (172.19.0.34): 56 data bytes\n64 bytes from 172.19.0.34: seq=0 ttl=64 time=0.5 ms\n"
                "\n--- 172.19.0.34 ping statistics ---\n3 packets transmitted, 1 packets received, 66% packet loss\n")
    silent = ("PING 172.19.0.34 (172.19.0.34): 56 data bytes\n\n--- 172.19.0.34 ping statistics ---\n"
              "3 packets transmitted, 0 packets received, 100% packet loss\n")
    [held] = checks.evaluate(reach, _reach_facts(("esp", "esp"), answered))
    [failed] = checks.evaluate(reach, _reach_facts(("esp", "esp"), silent))
    [elsewhere] = checks.evaluate(reach, _reach_facts(("esp", "none"), silent))
    [plain] = checks.evaluate(reach, _reach_facts(("none", "none"), silent, options={}))
    [unknown] = checks.evaluate(reach, _reach_facts(("unknown", "unknown"), silent))
    assert held.verdict == "pass" and held.observed == "1 of 3 pings answered by 172.19.0.34"
    assert failed.verdict == "fail" and failed.observed == "0 of 3 pings answered by 172.19.0.34" and failed.hint
    assert elsewhere.verdict == "n/a" and "the kernel of swarmnode2 has no ESP" in elsewhere.observed
    assert plain.verdict == "fail"  # not encrypted: the kernel's ESP does not matter
    assert unknown.verdict == "fail"  # could not look: judged


def test_the_swarms_join_token_is_in_no_report(tmp_path):
    """The workers joined with the token `docker swarm init` printed (the claims read it), and no report
    carries it: the JSON of the run shows it cut short (SWMTKN-1-…)."""
    import re

    from checker.exitcodes import for_run
    from checker.reporters import json_report

    recorded = (SWARM / "e1-bookworm-docker20" / "11-pass.swarmmanager.json").read_text()
    tokens = set(re.findall(r"SWMTKN-1-[0-9a-z]+-[0-9a-z]+", recorded)) - {
        "SWMTKN-1-13s9y4pfc3ythf8ivo334rrjuk6sqdqis73xasqjcpn2swcjjx-9f9s4g1gbosni96els2cznwwv"}  # the course's own
    assert tokens
    report, _variant = replay("e1-bookworm-docker20", "11-pass", tmp_path)
    assert report.passed
    text = json.dumps(json.loads(json_report.render(report, for_run(report))), ensure_ascii=False)
    assert not any(token in text for token in tokens) and "SWMTKN-1-…" in text
