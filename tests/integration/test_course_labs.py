"""The course's labs 02-06, 08-10 and 13-17 on one E1 container VM (the course's docker-vm).

`check-lab course` runs them all as the course prints them and leaves the machine as it found it; every claim
has its negative (tests/variants.py: COURSE_VARIANTS), a world where it is false, which fails exactly it.
Lab 03 pushes to the test environment's registry with logins, Docker Hub's stand-in, with the student's own
`docker login` in the VM; the password never shows in what check-lab prints or writes.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pytest

from checker.resources import until_gone
from tests.integration.conftest import machine_state, run_check, sh
from tests.student import FOLDERS, OBSERVED, Student, typed, until_observed
from tests.testenv import env as testenv
from tests.variants import COURSE_VARIANTS, make_course_variant

pytestmark = pytest.mark.integration

LABS = "02-06,08-10,13-17"
IDS = ["02", "03", "04", "05", "06", "08", "09", "10", "13", "14", "15", "16", "17"]


@pytest.fixture(scope="module")
def hub(shared_vm, lab_env):
    """The student's own `docker login` to Docker Hub's stand-in, as they would type it in the VM."""
    password = testenv.hub_password()
    login = (f"printf %s {password} | docker login -u {testenv.HUB_USER} --password-stdin {testenv.HUB_ADDR} "
             f">/dev/null")
    res = sh(shared_vm, login, timeout=300)
    assert res.ok, res.stderr
    yield {"hub": testenv.HUB_ADDR, "user": testenv.HUB_USER, "login": login, "password": password}
    sh(shared_vm, f"docker logout {testenv.HUB_ADDR} >/dev/null", timeout=120)  # the VM is shared (conftest)


def test_the_course_passes_and_leaves_the_machine_as_it_found_it(shared_vm, hub, monkeypatch, capsys, tmp_path):
    before = machine_state(shared_vm)
    report, junit = tmp_path / "course.json", tmp_path / "course.xml"
    code = run_check(monkeypatch, shared_vm, "course", "--labs", LABS, "--set", f"user={hub['user']}",
                     "--set", f"registry={hub['hub']}", "--json", str(report), "--junit", str(junit))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    data = json.loads(report.read_text())
    assert data["kind"] == "course"
    assert [t["label"] for t in data["targets"]] == IDS
    for target in data["targets"]:
        claims = target["report"]["claims"]
        assert claims and all(c["verdict"] == "pass" for c in claims), (target["label"], claims)
    # The console's course table: a row per lab.
    for lab in IDS:
        assert any(line.lstrip().startswith(lab) for line in out.splitlines()), out
    suites = [s.get("name") for s in ET.parse(junit).getroot().findall("testsuite")]
    assert len([s for s in suites if ": claims" in s]) == len(IDS), suites  # and one of steps each
    assert machine_state(shared_vm) == before
    # The student's password: never printed, never in a report.
    for text in (out, err, report.read_text(), junit.read_text()):
        assert hub["password"] not in text


def test_lab_03_without_a_user_is_a_one_line_usage_error(shared_vm, monkeypatch, capsys):
    code = run_check(monkeypatch, shared_vm, "03")
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, out + err
    assert lines and "--set user=" in lines[0], err


def fill(text: str, hub: dict) -> str:
    return text.replace("{hub}", hub["hub"]).replace("{user}", hub["user"]).replace("{login}", hub["login"])


@pytest.mark.parametrize("variant", COURSE_VARIANTS, ids=lambda v: v.id)
def test_each_claims_negative_fails_exactly_it(variant, shared_vm, hub, monkeypatch, capsys, tmp_path):
    folder = make_course_variant(variant, tmp_path)
    before = machine_state(shared_vm)
    if variant.setup:
        res = sh(shared_vm, fill(variant.setup, hub), timeout=300)
        assert res.ok, res.stderr
    try:
        report = tmp_path / "report.json"
        sets = [a for k, v in variant.sets.items() for a in ("--set", f"{k}={fill(v, hub)}")]
        code = run_check(monkeypatch, shared_vm, str(folder), *sets, *variant.args, "--json", str(report))
        out, err = capsys.readouterr()
        got = {c["id"]: c["verdict"] for c in json.loads(report.read_text())["claims"]}
        assert code == 1, out + err
        assert {cid for cid, v in got.items() if v == "fail"} == variant.fails, out
        assert {cid for cid, v in got.items() if v == "error"} == variant.not_judged, out
    finally:
        if variant.teardown:
            res = sh(shared_vm, fill(variant.teardown, hub), timeout=300)
            assert res.ok, res.stderr
    assert machine_state(shared_vm) == before


@pytest.mark.parametrize("lab", IDS)
def test_observe_changes_nothing(lab, shared_vm, hub, monkeypatch, capsys, tmp_path):
    """`--observe` on each lab runs only the commands that look: the machine is as it was, the report's
    fingerprint says so, and what it cannot see is "not judged" or failed, never an error of check-lab."""
    before = machine_state(shared_vm)
    config = sh(shared_vm, "sha256sum ~/.docker/config.json", timeout=300).stdout
    report = tmp_path / "observe.json"
    sets = ["--set", f"user={hub['user']}", "--set", f"registry={hub['hub']}"] if lab == "03" else []
    code = run_check(monkeypatch, shared_vm, lab, "--observe", *sets, "--json", str(report))
    out, err = capsys.readouterr()
    assert code in (0, 1), out + err
    data = json.loads(report.read_text())
    assert data["fingerprint"]["unchanged"] is True
    assert machine_state(shared_vm) == before
    assert sh(shared_vm, "sha256sum ~/.docker/config.json", timeout=300).stdout == config  # the login untouched


# ------------------------------------------------------------------ students do the labs themselves

def restore(vm, before: list[str]) -> None:
    """Remove what a scripted student made (containers, then images, volumes, networks not there before)."""
    made = [line.split() for line in set(machine_state(vm)) - set(before)]
    order = {"container": 0, "image": 1, "volume": 2, "network": 3}
    remove = {"container": "docker rm -f {}", "image": "docker rmi -f {}", "volume": "docker volume rm {}",
              "network": "docker network rm {}"}
    commands = [remove[kind].format(words[-1]) for kind, *words in sorted(made, key=lambda m: order[m[0]])]
    images = [c for c in commands if c.startswith("docker rmi")]
    containers = [words[-1] for kind, *words in made if kind == "container"]
    if containers:  # (one started with --rm and stopped may still be being removed by the engine: wait for it)
        commands.insert(len(containers), f"for id in {' '.join(containers)}; do {until_gone('id')}; done")
    if commands:  # (an image's children go first: the images again, once they have none)
        res = sh(vm, " ; ".join(commands + images) + " ; true", timeout=300)
        assert res.ok, res.stderr


def observe(monkeypatch, capsys, vm, lab: str, tmp_path, *sets: str) -> dict[str, str]:
    report = tmp_path / f"observe-{lab}.json"
    code = run_check(monkeypatch, vm, lab, "--observe", *sets, "--json", str(report))
    out, err = capsys.readouterr()
    data = json.loads(report.read_text())
    assert data["fingerprint"]["unchanged"] is True
    got = {c["id"]: c["verdict"] for c in data["claims"]}
    assert code == (0 if set(got.values()) == {"pass"} else 1), out + err
    # What observe mode cannot see is "not judged", with the reason and what to do; never failed.
    assert "fail" not in got.values(), out
    return got


def test_a_student_does_labs_02_03_05_13_14_and_17_then_observe_judges_what_they_left(shared_vm, hub, monkeypatch,
                                                                                       capsys, tmp_path):
    """The course's commands of labs 02, 03, 05, 13, 14 and 17 as printed, typed by a student in their own shell
    (the foreground `docker run`s in a first terminal, ended by Ctrl-C; lab 03 with the student's own
    account, labs 05 and 17 from the lab's folder, which the course forgets to `cd` into, lab 13's folder as it
    is named); then `--observe` judges each lab on what is left (lab 13 before its `down -v`, lab 17 while its
    loop runs): every claim whose evidence remains passes, the others are "not judged"."""
    before = machine_state(shared_vm)
    student = Student(shared_vm.ssh())
    try:
        student.clone(FOLDERS["02"], "labs/02-Build_your_image")
        done = student.do(typed("02"))
        assert done.ok and "Hello World!" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
        got = observe(monkeypatch, capsys, shared_vm, "02", tmp_path)
        assert {c for c, v in got.items() if v == "pass"} == OBSERVED["02"], got

        done = student.do(typed("03", hub))
        assert done.ok and "Hello World!" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
        got = observe(monkeypatch, capsys, shared_vm, "03", tmp_path, "--set", f"user={hub['user']}",
                      "--set", f"registry={hub['hub']}")
        assert {c for c, v in got.items() if v == "pass"} == OBSERVED["03"], got

        student.clone(FOLDERS["05"], "labs/05-Bind_mounts")
        done = student.do(typed("05"))
        assert done.ok and "Hello from a Java app!" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
        got = observe(monkeypatch, capsys, shared_vm, "05", tmp_path)
        assert {c for c, v in got.items() if v == "pass"} == OBSERVED["05"], got

        student.clone(FOLDERS["13"], "labs/13-Docker_Compose")
        before_down, down = until_observed("13", typed("13"))
        done = student.do(before_down)
        assert done.ok, done.stdout[-2000:] + done.stderr[-2000:]
        got = observe(monkeypatch, capsys, shared_vm, "13", tmp_path)
        assert {c for c, v in got.items() if v == "pass"} == OBSERVED["13"], got
        assert student.do(down).ok

        done = student.do(typed("14"))  # Portainer stays up: observe mode asks it what the browser would
        assert done.ok, done.stdout[-2000:] + done.stderr[-2000:]
        got = observe(monkeypatch, capsys, shared_vm, "14", tmp_path)
        assert set(got.values()) == {"pass"} and set(got) == OBSERVED["14"], got

        student.clone(FOLDERS["17"], "labs/17-Java_Docker_awareness")
        looping, ctrl_c = until_observed("17", typed("17"))
        done = student.do(looping)
        assert done.ok and "Memory (Max)" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
        got = observe(monkeypatch, capsys, shared_vm, "17", tmp_path)
        assert {c for c, v in got.items() if v == "pass"} == OBSERVED["17"], got
        assert student.do(ctrl_c).ok
    finally:
        student.forget()
        student.ssh.close()
        restore(shared_vm, before)
    assert machine_state(shared_vm) == before


@pytest.mark.parametrize("lab,ticked", [
    ("04", {"volume-listed", "volume-under-engine", "container-fills-empty-volume"}),
    ("10", {"on-host-network"}),
])
def test_watch_ticks_what_it_sees_while_a_student_does_the_lab(lab, ticked, shared_vm, tmp_path):
    """`check-lab NN --watch` follows a student typing the course's commands (a couple of seconds apart, as
    one reads the lab): the claims whose evidence exists while the lab runs (a volume and what it holds, a
    container on the host network) are ticked, though the lab's end removes that evidence; the others
    (what only the commands' own output shows) are "not judged"."""
    from tests.integration.test_student import end_watch, start_watch

    before = machine_state(shared_vm)
    student = Student(shared_vm.ssh())
    if lab == "04":  # lab 04 starts from lab 02's image, which the student built then
        student.clone(FOLDERS["02"], "labs/02-Build_your_image")
        built = student.do(typed("02")[:2])
        assert built.ok, built.stderr[-2000:]
    report = tmp_path / "watch.json"
    watch = start_watch(shared_vm, report, 300, lab)
    try:
        done = student.do(typed(lab), pause=2)
        assert done.ok, done.stdout[-2000:] + done.stderr[-2000:]
        time.sleep(3)  # the last look
        code, out = end_watch(watch, wait=5)
        got = {c["id"]: c["verdict"] for c in json.loads(report.read_text())["claims"]}
        assert code == 1, out
        assert {c for c, v in got.items() if v == "pass"} == ticked, out
        assert "fail" not in got.values(), out
    finally:
        if watch.poll() is None:
            watch.kill()
        student.forget()
        student.ssh.close()
        restore(shared_vm, before)
    assert machine_state(shared_vm) == before
