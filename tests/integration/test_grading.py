"""Grading a class: observe mode on work done by hand, many targets at once, scores, labs 00 and 01."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.integration.conftest import run_check
from tests.integration.test_negative import lab_state
from tests.variants import LAB07, VARIANTS

pytestmark = pytest.mark.integration

LITERAL_LAB = """set -e
cd ~/lab07
docker pull ubuntu:18.04
sudo ls /var/lib/docker/overlay2
docker build -t my-base-image:1.0 -f Dockerfile-my-base-image .
docker build -t my-image:1.0 -f Dockerfile-my-image .
docker image ls
docker history my-base-image:1.0
docker history my-image:1.0
for i in 1 2 3 4 5; do docker run -dit --name my_container_$i my-image:1.0 bash; done
docker ps
docker ps -s
sudo ls /var/lib/docker/containers
sudo sh -c 'du -sh /var/lib/docker/containers/*'
docker stop $(docker ps -q)
"""


def do_the_lab_by_hand(vm, dockerfile_my_image: str | None = None) -> None:
    """What a student does: copy the lab's files, type its commands (the literal ones)."""
    ssh = vm.ssh()
    try:
        assert ssh.run("rm -rf ~/lab07 && mkdir ~/lab07").ok
        ssh.put_files([(LAB07 / name, f"{ssh.run('echo $HOME').stdout.strip()}/lab07/{name}")
                       for name in ("Dockerfile-my-base-image", "Dockerfile-my-image", "hello.sh")])
        if dockerfile_my_image:
            res = ssh.run(f"cat > ~/lab07/Dockerfile-my-image <<'EOF'\n{dockerfile_my_image}EOF")
            assert res.ok, res.stderr
        res = ssh.run(LITERAL_LAB, timeout=600)
        assert res.ok, res.stderr
    finally:
        ssh.close()


def undo_the_lab(vm) -> None:
    ssh = vm.ssh()
    ssh.run("docker rm -f my_container_1 my_container_2 my_container_3 my_container_4 my_container_5; "
            "docker rmi my-image:1.0 my-base-image:1.0 ubuntu:18.04; rm -rf ~/lab07", timeout=120)
    ssh.close()


def home_listing(vm) -> str:
    ssh = vm.ssh()
    try:
        return ssh.run("ls -la ~ ~/.check-lab 2>&1; find /tmp -maxdepth 1 -name 'check-lab*'").stdout
    finally:
        ssh.close()


def test_observe_mode_judges_what_the_student_did_and_changes_nothing(project_factory, monkeypatch, capsys):
    vm = project_factory("observe")
    vm.up()
    do_the_lab_by_hand(vm)
    before, home_before = lab_state(vm), home_listing(vm)
    report = vm.root / "r.json"
    code = run_check(monkeypatch, vm, "07", "--observe", "--json", str(report))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(observe mode)" in out
    data = json.loads(report.read_text())
    assert all(c["verdict"] == "pass" for c in data["claims"]), data["claims"]
    steps = {s["id"]: s["status"] for s in data["steps"]}
    assert steps["pull"] == steps["build-base"] == steps["run"] == steps["stop"] == "skipped"
    assert steps["history-image"] == steps["ps-size"] == "passed"
    pulled = {c["id"]: c for c in data["claims"]}["layers-pulled-separately"]["observed"]
    assert "judged from the image" in pulled
    # Nothing on the target changed: the student's containers and images, and their home folder.
    assert lab_state(vm) == before
    assert home_listing(vm) == home_before
    assert data["notes"] == []

    # Done wrong: my-image built with an extra RUN layer.
    undo_the_lab(vm)
    do_the_lab_by_hand(vm, VARIANTS["extra-run-layer"][0])
    code = run_check(monkeypatch, vm, "07", "--observe", "--json", str(report))
    err = capsys.readouterr().err
    assert code == 1
    failing = {c["id"] for c in json.loads(report.read_text())["claims"] if c["verdict"] != "pass"}
    assert failing == {"cmd-layer-empty", "image-sizes-equal"}
    assert "cmd-layer-empty" in err


def test_three_targets_one_stopped(project_factory, monkeypatch, capsys, tmp_path):
    vms = [project_factory(name) for name in ("alice", "bob", "carol")]
    for vm in vms:
        vm.up()
    vms[2].vagrant.halt()
    targets = tmp_path / "class.txt"
    targets.write_text("# the class\n" + "".join(f"{name} = vagrant:{vm.root}\n"
                                                 for name, vm in zip(("alice", "bob", "carol"), vms)))
    report, junit = tmp_path / "class.json", tmp_path / "class.xml"
    code = run_check(monkeypatch, vms[0], "07", "--targets", str(targets), "-j", "3", "--json", str(report),
                     "--junit", str(junit))
    out, err = capsys.readouterr()
    assert code == 3
    assert "2/3 targets pass" in out
    assert [ln.split()[:2] for ln in out.splitlines() if ln.strip().startswith(("alice", "bob", "carol"))] == \
        [["alice", "PASS"], ["bob", "PASS"], ["carol", "unreachable"]]
    assert "carol (unreachable)" in err

    data = json.loads(report.read_text())
    assert data["kind"] == "targets" and data["summary"] == {"targets": 3, "passed": 2, "unreachable": 1}
    sections = {t["label"]: t for t in data["targets"]}
    assert sections["alice"]["result"] == sections["bob"]["result"] == "pass"
    assert sections["alice"]["score"] == {"points": 10.0, "max": 10.0}
    assert sections["carol"]["result"] == "unreachable" and "is stopped" in sections["carol"]["error"]

    suites = {s.get("name"): s for s in ET.parse(junit).getroot().iter("testsuite")}
    assert any(name.endswith("claims [alice]") and s.get("tests") == "10" and s.get("failures") == "0"
               for name, s in suites.items())
    carol = next(s for name, s in suites.items() if name.endswith("claims [carol]"))
    assert carol.get("errors") == "1"


def test_labs_00_and_01_on_a_fresh_vm_and_their_negatives(project_factory, monkeypatch, capsys):
    vm = project_factory("labs0001")
    vm.up()
    for lab, points in (("00", 8.0), ("01", 7.0)):
        report = vm.root / f"r{lab}.json"
        code = run_check(monkeypatch, vm, lab, "--json", str(report))
        out = capsys.readouterr().out
        assert code == 0, out
        data = json.loads(report.read_text())
        assert data["score"] == {"points": points, "max": points}
        assert all(c["verdict"] == "pass" for c in data["claims"])

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

    # 01: an image that cannot be pulled: the first container never runs.
    code = run_check(monkeypatch, vm, "01", "--set", "image=127.0.0.1:5999/nothing:1")
    err = capsys.readouterr().err
    assert code == 1 and "first-container-ran" in err
