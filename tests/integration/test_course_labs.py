"""The course's labs 02-06, 08-10 and 16 on one E1 container VM (the course's docker-vm).

`check-lab course` runs them all as the course prints them and leaves the machine as it found it; every claim
has its negative (tests/variants.py: COURSE_VARIANTS), a world where it is false, which fails exactly it.
Lab 03 pushes to the test environment's registry with logins, Docker Hub's stand-in, with the student's own
`docker login` in the VM; the password never shows in what check-lab prints or writes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.integration.conftest import run_check, sh
from tests.testenv import env as testenv
from tests.variants import COURSE_VARIANTS, make_course_variant

pytestmark = pytest.mark.integration

LABS = "02-06,08-10,16"
IDS = ["02", "03", "04", "05", "06", "08", "09", "10", "16"]


def machine_state(vm) -> list[str]:
    """Everything a lab may create: containers, images, volumes and networks, by name and id."""
    res = sh(vm, "docker ps -a --format 'container {{.Names}} {{.ID}}'; "
                 "docker image ls --format 'image {{.Repository}}:{{.Tag}} {{.ID}}'; "
                 "docker volume ls --format 'volume {{.Name}}'; docker network ls --format 'network {{.Name}} {{.ID}}'", timeout=300)
    assert res.ok, res.stderr
    return sorted(res.stdout.splitlines())


@pytest.fixture(scope="module")
def hub(shared_vm, lab_env):
    """The student's own `docker login` to Docker Hub's stand-in, as they would type it in the VM."""
    password = testenv.hub_password()
    login = (f"printf %s {password} | docker login -u {testenv.HUB_USER} --password-stdin {testenv.HUB_ADDR} "
             f">/dev/null")
    res = sh(shared_vm, login, timeout=300)
    assert res.ok, res.stderr
    return {"hub": testenv.HUB_ADDR, "user": testenv.HUB_USER, "login": login, "password": password}


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
        code = run_check(monkeypatch, shared_vm, str(folder), *sets, "--json", str(report))
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
