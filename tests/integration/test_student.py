"""Students do the lab themselves: a scripted student types the course's commands exactly as its README
prints them (tests/student.py), in a shell of their own on the VM, while `check-lab 07 --watch` follows;
then `check-lab 07 --observe` judges what they left. On the three engines, and with one mistake at a time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checker.resources import until_gone
from tests.integration.conftest import run_check
from tests.student import Student, course_commands
from tests.testenv import env as testenv
from tests.variants import LAB07

pytestmark = pytest.mark.integration

CHECK_LAB = Path(sys.executable).parent / "check-lab"
COMMANDS = course_commands(LAB07 / "course" / "README.md")
# What the course's stop removes with `--rm`: their sizes can no longer be measured afterwards.
GONE = {"container-writable-layer-small", "container-dirs-small", "disk-total-formula"}


def start_watch(vm, report: Path, timeout: float = 600, lab: str = "07", *sets: str) -> subprocess.Popen:
    proc = subprocess.Popen([str(CHECK_LAB), lab, "--watch", "--watch-timeout", str(timeout), "--json", str(report),
                             *sets],
                            cwd=vm.root, env=vm.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # It is watching once it says so (its first look is done before the student starts).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        if "Ctrl-C when you are done" in line:
            return proc
    proc.kill()
    pytest.fail("the watch did not start: " + proc.communicate()[0])


def end_watch(proc: subprocess.Popen, wait: float = 30) -> tuple[int, str]:
    """Let the watch end by itself (every claim holds), or end it as a student would: Ctrl-C."""
    try:
        out, _ = proc.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def verdicts(report: Path) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in json.loads(report.read_text())["claims"]}


def student_session(vm) -> Student:
    return Student(vm.ssh())


def undo(vm) -> None:
    ssh = vm.ssh()
    # (The containers ran with --rm: one the student stopped may still be being removed by the engine, and
    # holds its image until it is gone.)
    ssh.run("c=$(docker ps -aq --filter name=my_container_); docker rm -f $c >/dev/null 2>&1; "
            f"for id in $c; do {until_gone('id')}; done; "
            "docker rmi my-image:1.0 my-base-image:1.0 ubuntu:18.04 >/dev/null 2>&1; "
            "rm -rf ~/SNY.OSS.DCK.01.01.00; true", timeout=120)
    ssh.close()


# E1 (legacy builder, overlay2) and E3 (BuildKit, containerd image store): the two ends of what the watch
# reads; E2 sits between them and is left to test_engines, to keep the suite within its hour.
ENGINES = {"e1": {}, "e3": {**testenv.vm_settings("trixie"), "LAB_IMAGE_STORE": "containerd"}}


@pytest.fixture(scope="module")
def trixie(lab_env):
    return testenv.ensure_container_vm(lab_env, "trixie")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_the_course_typed_as_printed_passes_watch_and_observe(engine, trixie, project_factory, request,
                                                               monkeypatch, capsys, tmp_path):
    if ENGINES[engine]:
        vm = project_factory(f"student-{engine}", ENGINES[engine])
        vm.up()
    else:  # E1: the VM the modules share (conftest), left as found
        vm = request.getfixturevalue("shared_vm")
    try:
        the_course_typed_as_printed_passes_watch_and_observe(vm, monkeypatch, capsys, tmp_path)
    finally:
        undo(vm)


def the_course_typed_as_printed_passes_watch_and_observe(vm, monkeypatch, capsys, tmp_path):
    watch = start_watch(vm, tmp_path / "watch.json")
    student = student_session(vm)
    student.clone(LAB07, "labs/07-FS_layering")
    typed = student.do(COMMANDS)
    assert typed.ok, typed.stderr[-2000:]
    code, out = end_watch(watch)
    assert code == 0, out
    data = json.loads((tmp_path / "watch.json").read_text())
    assert all(c["verdict"] == "pass" for c in data["claims"]), data["claims"]
    assert "ended: every claim holds" in data["notes"][-1]
    # Each claim was ticked while its evidence existed, in the lab's order: sizes before the stop.
    ticked = {k.split(".", 1)[1]: v for k, v in data["timings"].items() if k.startswith("ticked.")}
    assert max(ticked[c] for c in GONE) <= ticked["containers-stopped"]

    report = tmp_path / "observe.json"
    code = run_check(monkeypatch, vm, "07", "--observe", "--json", str(report))
    out = capsys.readouterr().out
    got = verdicts(report)
    # After the course's stop (`--rm`): every claim judged from what the engine still holds, except the
    # sizes of the removed containers, "not judged" with the reason and what to do, never failed.
    assert {cid for cid, v in got.items() if v != "pass"} == GONE, out
    assert {got[c] for c in GONE} == {"error"} and code == 1
    data = json.loads(report.read_text())
    assert data["fingerprint"]["unchanged"] is True and data["fingerprint"]["changes"] == []  # by the engine's log
    assert all("--watch" in c["hint"] for c in data["claims"] if c["id"] in GONE)
    student.ssh.close()


MISTAKES = {
    # an extra RUN in Dockerfile-my-image
    "extra-run": ({"Dockerfile-my-image": b"FROM my-base-image:1.0\nRUN echo built > /app/built.txt\n"
                                          b"CMD /app/hello.sh"}, None, {"cmd-layer-empty", "image-sizes-equal"}),
    # four containers instead of five
    "four-containers": ({}, lambda c: c.replace(" \\\n  && docker run --rm -dit --name my_container_5 my-image:1.0 bash",
                                                 ""), {"five-containers-running"}),
    # a container from the wrong image
    "wrong-image": ({}, lambda c: c.replace("--name my_container_3 my-image:1.0", "--name my_container_3 ubuntu:18.04"),
                    {"five-containers-running"}),
    # no stop at the end
    "no-stop": ({}, lambda c: None if c.startswith("docker stop") else c, {"containers-stopped"}),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_one_mistake_fails_exactly_its_claim(mistake, shared_vm, monkeypatch, capsys, tmp_path):
    files, change, concerned = MISTAKES[mistake]
    commands = [c for c in (change(c) if change else c for c in COMMANDS) if c is not None]
    watch = start_watch(shared_vm, tmp_path / "watch.json")
    student = student_session(shared_vm)
    try:
        student.clone(LAB07, "labs/07-FS_layering", files)
        typed = student.do(commands)
        assert typed.ok, typed.stderr[-2000:]
        code, out = end_watch(watch, wait=15)
        assert code == 1, out
        got = verdicts(tmp_path / "watch.json")
        assert {cid for cid, v in got.items() if v != "pass"} == concerned, got
        # Ended by Ctrl-C (a claim never holds): judged with one last look at the machine as it is.
        assert json.loads((tmp_path / "watch.json").read_text())["notes"][-1].endswith("ended: Ctrl-C and a last look")

        report = tmp_path / "observe.json"
        code = run_check(monkeypatch, shared_vm, "07", "--observe", "--json", str(report))
        capsys.readouterr()
        got = verdicts(report)
        assert code == 1
        assert {cid for cid, v in got.items() if v == "fail"} == concerned, got
        # Beyond it, only what the course's own stop took away is left unjudged.
        assert {cid for cid, v in got.items() if v == "error"} <= GONE
    finally:
        if watch.poll() is None:
            watch.kill()
        student.ssh.close()
        undo(shared_vm)


def test_a_base_image_that_did_not_come_from_a_registry_fails_the_pull_claim(shared_vm, monkeypatch, capsys,
                                                                               tmp_path):
    """Observe mode's negative of layers-pulled-separately: ubuntu:18.04 made on the machine (not pulled)."""
    student = student_session(shared_vm)
    try:
        made = student.ssh.run(
            "docker pull -q ubuntu:18.04 >/dev/null && old=$(docker image inspect -f '{{.Id}}' ubuntu:18.04) && "
            "docker create --name tmp-export ubuntu:18.04 true >/dev/null && "
            "docker export tmp-export | docker import --change 'CMD [\"bash\"]' - ubuntu:18.04 >/dev/null && "
            "docker rm tmp-export >/dev/null && docker rmi $old >/dev/null", timeout=300)
        assert made.ok, made.stderr
        student.clone(LAB07, "labs/07-FS_layering")
        typed = student.do([c for c in COMMANDS if not c.startswith("docker pull")])
        assert typed.ok, typed.stderr[-2000:]
        report = tmp_path / "observe.json"
        code = run_check(monkeypatch, shared_vm, "07", "--observe", "--json", str(report))
        capsys.readouterr()
        got = verdicts(report)
        assert code == 1 and got["layers-pulled-separately"] == "fail"
        assert {cid for cid, v in got.items() if v == "fail"} == {"layers-pulled-separately"}
    finally:
        student.ssh.close()
        undo(shared_vm)


def test_the_watch_holds_no_lock_and_changes_nothing(shared_vm, tmp_path):
    # (The VM is shared: a run of another module killed with its VM may have left a work folder.)
    folders = "ls -d /tmp/check-lab.* 2>/dev/null | wc -l"
    ssh = shared_vm.ssh()
    try:
        had = ssh.run(folders).stdout.strip()
    finally:
        ssh.close()
    watch = start_watch(shared_vm, tmp_path / "watch.json", timeout=20)
    ssh = shared_vm.ssh()
    try:
        # The student's own commands are never kept waiting: no lock is held, no work folder made.
        free = ssh.run(f"mkdir -p ~/.check-lab && flock -n ~/.check-lab/lock true && echo free; {folders}")
        assert free.stdout.split() == ["free", had], free.stdout
    finally:
        ssh.close()
    code, out = end_watch(watch, wait=60)
    assert code == 1 and "ended: --watch-timeout" in json.loads((tmp_path / "watch.json").read_text())["notes"][-1]
