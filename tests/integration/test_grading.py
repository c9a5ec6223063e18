"""Grading a class: many targets at once, scores, labs 00 and 01 (observe mode on lab 07 done by hand is in
test_student.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from checker.cli import main as check_lab
from tests.integration.conftest import run_check
from tests.integration.test_negative import lab_state
from tests.testenv import env as testenv
from tests.variants import LAB07
from tests.workflows import batches

pytestmark = pytest.mark.integration

def test_a_class_in_batches_merged_into_the_roster(shared_vm, project_factory, monkeypatch, capsys, tmp_path):
    """A class of three machines, one stopped, checked as the instructors' workflow does
    (.github/workflows/grade-class.yml): split by its own steps into two batches, each checked with
    `--targets` (the machines of a batch at once), then `check-lab merge` of the two reports. (Alice's
    machine is the VM the modules share.)"""
    vms = [shared_vm, project_factory("bob"), project_factory("carol")]
    with ThreadPoolExecutor(max_workers=2) as pool:  # brought up together, as tests/engines.py does
        list(pool.map(lambda vm: vm.up(), vms[1:]))
    vms[2].vagrant.halt()
    targets = tmp_path / "class.txt"
    targets.write_text("# the class\n" + "".join(f"{name} = vagrant:{vm.root}\n"
                                                 for name, vm in zip(("alice", "bob", "carol"), vms)))
    first, second = batches(targets, 2, tmp_path)
    assert first.read_text().split()[0::3] == ["alice", "carol"] and second.read_text().split()[0] == "bob"

    report = tmp_path / "report-0.json"
    code = run_check(monkeypatch, vms[0], "07", "--targets", str(first), "-j", "2", "--json", str(report))
    out, err = capsys.readouterr()
    assert code == 3
    assert "1/2 targets pass" in out
    assert [ln.split()[:2] for ln in out.splitlines() if ln.strip().startswith(("alice", "carol"))] == \
        [["alice", "PASS"], ["carol", "unreachable"]]
    assert "carol (unreachable)" in err
    data = json.loads(report.read_text())
    assert data["kind"] == "targets" and data["summary"] == {"targets": 2, "passed": 1, "unreachable": 1}
    sections = {t["label"]: t for t in data["targets"]}
    assert sections["alice"]["result"] == "pass" and sections["alice"]["score"] == {"points": 10.0, "max": 10.0}
    assert sections["carol"]["result"] == "unreachable" and "is stopped" in sections["carol"]["error"]
    assert run_check(monkeypatch, vms[1], "07", "--targets", str(second), "--json", str(tmp_path / "report-1.json")) == 0
    capsys.readouterr()

    # The roster job: every batch's report merged.
    roster, table, junit = tmp_path / "class-roster.json", tmp_path / "class-roster.csv", tmp_path / "class-roster.xml"
    code = check_lab(["merge", str(report), str(tmp_path / "report-1.json"), "--report", f"roster:{roster}",
                      "--report", f"csv:{table}", "--report", f"junit:{junit}", "--no-color"])
    out, _err = capsys.readouterr()
    assert code == 3 and "2/3 students pass" in out
    data = json.loads(roster.read_text())
    assert sorted(s["student"] for s in data["students"]) == ["alice", "bob", "carol"]
    by_name = {s["student"]: s for s in data["students"]}
    assert by_name["alice"]["score"] == by_name["bob"]["score"] == 10.0
    assert set(by_name["bob"]["verdicts"].values()) == {"pass"} and len(by_name["bob"]["verdicts"]) == 10
    assert by_name["carol"]["result"] == "unreachable" and "is stopped" in by_name["carol"]["error"]
    assert table.read_text().splitlines()[0].startswith("student,target,result,score,max,")
    suites = {s.get("name"): s for s in ET.parse(junit).getroot().iter("testsuite")}
    assert any(name.endswith("claims [bob]") and s.get("tests") == "10" and s.get("failures") == "0"
               for name, s in suites.items())
    carol = next(s for name, s in suites.items() if name.endswith("claims [carol]"))
    assert carol.get("errors") == "1"


def test_labs_00_and_01_on_a_fresh_vm_their_negatives_and_01_typed_then_observed(project_factory, monkeypatch, capsys):
    vm = project_factory("labs0001")
    vm.up()
    for lab, points in (("00", 8.0), ("01", 8.0)):
        report = vm.root / f"r{lab}.json"
        code = run_check(monkeypatch, vm, lab, "--json", str(report))
        out = capsys.readouterr().out
        assert code == 0, out
        data = json.loads(report.read_text())
        assert data["score"] == {"points": points, "max": points}
        assert all(c["verdict"] == "pass" for c in data["claims"])
    # Lab 00's additions are marked so in the report; its prompt is the course's docker-vm.
    data = json.loads((vm.root / "r00.json").read_text())
    assert {d.get("claim") for d in data["departures"] if d["kind"] == "addition"} >= {"docker-engine-version",
                                                                                      "user-can-use-docker"}
    assert {s["id"]: s["holds"] for s in data["lab_vs_engine"]}["prompt"] is True
    # Lab 01 on a fresh VM: the course's "no containers, no images yet" hold here.
    data = json.loads((vm.root / "r01.json").read_text())
    assert all(s["holds"] for s in data["lab_vs_engine"])
    assert lab_state(vm) == []  # the hello-world container and image are gone again

    # 00: a user outside the docker group: the lab says so (it checks the environment: no target error).
    ssh = vm.ssh()
    assert ssh.run("sudo gpasswd -d vagrant docker").ok
    ssh.close()
    try:
        report = vm.root / "neg00.json"
        code = run_check(monkeypatch, vm, "00", "--json", str(report))
        err = capsys.readouterr().err
        assert code == 1
        data = json.loads(report.read_text())
        failing = {c["id"] for c in data["claims"] if c["verdict"] != "pass"}
        assert {"user-can-use-docker", "container-runs"} <= failing
        assert "docker-engine-running" not in failing and "vm-reachable" not in failing
        assert "user-can-use-docker" in err
        assert data["score"]["points"] < data["score"]["max"]
    finally:
        ssh = vm.ssh()
        ssh.run("sudo usermod -aG docker vagrant")
        ssh.close()

    # 01: hello-world cannot be pulled (the VM's engine cannot reach its registry mirror): the pull claim
    # fails, and with it what the container would have shown; the CLI still reaches the daemon.
    ssh = vm.ssh()
    block = "OUTPUT -p tcp -d " + testenv.HOST_IP + " --dport 5000 -j REJECT"
    assert ssh.run(f"sudo iptables -I {block}").ok
    try:
        report = vm.root / "neg01.json"
        code = run_check(monkeypatch, vm, "01", "--json", str(report))
        err = capsys.readouterr().err
        assert code == 1 and "image-pulled-from-registry" in err
        got = {c["id"]: c["verdict"] for c in json.loads(report.read_text())["claims"]}
        assert {c for c, v in got.items() if v != "pass"} == {"image-pulled-from-registry", "hello-from-docker",
                                                              "listed-exited", "image-listed"}
    finally:
        ssh.run(f"sudo iptables -D {block}")
        ssh.close()

    # 01 typed by the student as the course prints it, then observed (on the same VM, as it was found).
    lab_01_observed_after_the_student_typed_it(vm, monkeypatch, capsys, vm.root)


def lab_01_observed_after_the_student_typed_it(vm, monkeypatch, capsys, tmp_path):
    from tests.student import Student, course_commands

    folder = LAB07.parent / "01-Check_Docker_installation"
    student = Student(vm.ssh())
    typed = student.do(course_commands(folder / "course" / "README.md"))
    assert typed.ok and "Hello from Docker!" in typed.stdout
    before = lab_state(vm)
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, vm, "01", "--observe", "--json", str(report))
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(report.read_text())
    claims = {c["id"]: c for c in data["claims"]}
    assert "docker logs" in claims["hello-from-docker"]["observed"]
    assert "judged from the stored image" in claims["image-pulled-from-registry"]["observed"]
    assert lab_state(vm) == before and data["fingerprint"]["unchanged"]
    student.ssh.close()
