"""Engine E6: Podman behind the course's `docker` commands (Debian unstable's podman 5.8 with podman-docker),
provisioned by `LAB_ENGINE=podman` through the same provisioner, in a container VM. The login user runs its
own rootless Podman (no daemon, no docker group), as a student who installs podman-docker does.

Lab 00 is judged there (and labs 01, 04, 08, 13 and 16): each claim in its form true on Podman (no daemon: `docker version` answers with its
client half; the login user's own rootless Podman), or not applicable, with the reason (Docker Engine's
version says nothing about Podman's).
"""

from __future__ import annotations

import json

import pytest

from tests import engines
from tests.integration.conftest import run_check, sh
from tests.testenv import env as testenv

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def podman_vm(lab_env, tmp_path_factory):
    from tests.integration.conftest import VagrantProject

    testenv.ensure_container_vm(lab_env, "sid", testenv.PODMAN_PACKAGES)
    project = VagrantProject(tmp_path_factory.mktemp("e6"), lab_env, engines.engine_settings("E6"))
    project.up()
    yield project
    project.destroy()


def test_the_provisioner_makes_podman_the_users_docker(podman_vm):
    log = podman_vm.log.read_text()
    steps = [line.split("]", 1)[1].split(":", 1)[0].strip() for line in log.splitlines()
             if line.strip().startswith("default: [") and "summary" not in line]
    assert steps == ["apt-proxy", "hosts", "machine-id", "engine-installed", "tools-installed", "podman-config",
                     "user-namespaces", "engine-verified"], log[-3000:]
    assert "[unchanged] engine-verified: Podman 5." in log and "(rootless), overlay storage driver, usable by " \
        "vagrant as docker, mirror " + testenv.REGISTRY_ADDR in log
    # No Docker here: `docker` is podman-docker's front, and the user has no docker group to be in.
    res = sh(podman_vm, "command -v dockerd || echo none; docker --version; id -Gn")
    lines = res.stdout.splitlines()
    assert lines[0] == "none" and lines[1].startswith("podman version 5.") and "docker" not in lines[2].split()


def test_lab_00_holds_on_podman_in_its_podman_form(podman_vm, monkeypatch, tmp_path):
    report = tmp_path / "00.json"
    assert run_check(monkeypatch, podman_vm, "00", "--report", f"json:{report}", "--no-color") == 0
    data = json.loads(report.read_text())
    assert data["engine"]["product"] == "podman" and data["engine"]["rootless"] is True
    assert data["engine"]["builder"] == "buildah" and data["engine"]["storage_driver"] == "overlay"
    verdicts = {c["id"]: c for c in data["claims"]}
    assert {k: v["verdict"] for k, v in verdicts.items()} == {
        "vm-reachable": "pass", "docker-engine-running": "pass", "docker-engine-version": "n/a",
        "user-can-use-docker": "pass", "container-runs": "pass"}
    assert verdicts["docker-engine-running"]["observed"].startswith("Podman 5.")
    assert "not Docker Engine" in verdicts["docker-engine-version"]["observed"]
    assert "rootless" in verdicts["user-can-use-docker"]["observed"]
    # The image the lab pulled is removed again from the user's own store.
    assert "ubuntu" not in sh(podman_vm, "docker images --format '{{.Repository}}'").stdout


def test_podman_not_answering_as_root_fails_exactly_the_engine_claim(podman_vm, monkeypatch, tmp_path):
    """The negative of the engine claim's Podman form: root's `docker` (sudo's path) finds no podman."""
    neg = "/etc/sudoers.d/zz-check-lab-negative"
    assert sh(podman_vm, f"printf '%s\\n' 'Defaults secure_path=\"/nonexistent\"' > /tmp/neg && chmod 0440 /tmp/neg "
                         f"&& sudo chown root:root /tmp/neg && sudo mv /tmp/neg {neg}").ok
    try:
        report = tmp_path / "00.json"
        assert run_check(monkeypatch, podman_vm, "00", "--report", f"json:{report}", "--no-color") == 1
        verdicts = {c["id"]: c["verdict"] for c in json.loads(report.read_text())["claims"]}
        assert [k for k, v in verdicts.items() if v == "fail"] == ["docker-engine-running"], verdicts
    finally:
        # (by its full path: sudo looks a command up in secure_path, which the file points nowhere)
        assert sh(podman_vm, f"sudo -n /bin/rm -f {neg} && sudo -n true").ok


def test_labs_in_their_podman_form_and_what_podman_cannot_do_is_not_applicable(podman_vm, monkeypatch, tmp_path):
    """Labs 01 and 04 hold whole on Podman in its Podman form (hello-world is Docker Hub's, as the provisioner
    resolves it, pulled in Podman's words; a volume in use is refused in Podman's words); lab 16's `--cpus 1`
    claim needs resource limits, which rootless Podman on cgroup v1 (this host's) ignores: not applicable,
    with the reason, while its claim without a limit is judged. Lab 08's ping cannot open its socket in a
    rootless container here: not applicable, said in ping's words; lab 13 needs Compose, which Podman has
    not here: none of its steps runs, and the lab passes with nothing applicable."""
    report = tmp_path / "course.json"
    assert run_check(monkeypatch, podman_vm, "course", "--labs", "01,04,08,13,16", "--report", f"json:{report}",
                     "--no-color") == 0
    runs = {t["label"]: t["report"] for t in json.loads(report.read_text())["targets"]}
    for lab in ("01", "04"):
        assert all(c["verdict"] == "pass" for c in runs[lab]["claims"]), runs[lab]["claims"]
    ping = {c["id"]: c for c in runs["08"]["claims"]}["network-unreachable"]
    assert ping["verdict"] == "n/a" and "ICMP socket" in ping["observed"], ping
    assert {c["verdict"] for c in runs["13"]["claims"]} == {"n/a"}
    assert {s["status"] for s in runs["13"]["steps"]} == {"skipped"}
    verdicts = {c["id"]: c for c in runs["16"]["claims"]}
    assert verdicts["sees-every-processor"]["verdict"] == "pass"
    assert verdicts["sees-one-with-cpus-1"]["verdict"] == "n/a"
    assert "rootless Podman on cgroup v1 ignores" in verdicts["sees-one-with-cpus-1"]["observed"]


def test_the_course_typed_as_printed_passes_watch_and_observe_on_podman(podman_vm, monkeypatch, capsys, tmp_path):
    """A student types lab 07 as the course prints it (root's shell left where the course's prompt turns back
    to vagrant's) while `check-lab 07 --watch` follows Podman's events; then `--observe`. The claims about
    /var/lib/docker are not applicable, and the watch does not wait for them."""
    from tests.integration.test_student import COMMANDS, GONE, end_watch, start_watch, undo, verdicts
    from tests.student import Student
    from tests.variants import LAB07

    watch = start_watch(podman_vm, tmp_path / "watch.json")
    student = Student(podman_vm.ssh())
    try:
        student.clone(LAB07, "labs/07-FS_layering")
        assert "exit" in COMMANDS and student.do(COMMANDS).ok
        code, out = end_watch(watch)
        assert code == 0, out
        data = json.loads((tmp_path / "watch.json").read_text())
        na = {"layers-stored-in-driver-dir", "container-dirs-small", "disk-total-formula"}
        assert {c["id"] for c in data["claims"] if c["verdict"] == "n/a"} == na, data["claims"]
        assert all(c["verdict"] == "pass" for c in data["claims"] if c["id"] not in na), data["claims"]
        assert "ended: every claim holds (3 not applicable here)" in data["notes"][-1]

        report = tmp_path / "observe.json"
        assert run_check(monkeypatch, podman_vm, "07", "--observe", "--json", str(report)) == 1
        capsys.readouterr()
        got = verdicts(report)
        # After the course's stop (`--rm`): the removed containers' sizes are not judged, as on Docker.
        assert {cid for cid, v in got.items() if v == "error"} == GONE - na
        assert {cid for cid, v in got.items() if v == "n/a"} == na
        # Podman keeps no log of changes to ask: observe mode hashes what the engine holds before and after.
        left = json.loads(report.read_text())["fingerprint"]
        assert left["unchanged"] and left["before"] == left["after"] and "changes" not in left
    finally:
        student.ssh.close()
        undo(podman_vm)


def test_the_event_stream_waits_for_events_when_podman_warns_on_stderr(podman_vm):
    """Podman's `docker events` warns on its standard error (cgroup v1) before any event: the stream drops it,
    and a read waits for events (unread, that warning kept the channel readable and the watch spinning)."""
    import time

    from checker.watch import EVENTS

    ssh = podman_vm.ssh()
    stream = ssh.open_stream(EVENTS)
    try:
        # Reads of up to a second each, for three seconds: a handful (one ends early when the warning comes),
        # not the thousands of a channel that stays readable.
        reads, until = [], time.monotonic() + 3
        while time.monotonic() < until:
            reads.append(stream.read(1.0))
        assert set(map(tuple, reads)) == {()} and len(reads) <= 10, len(reads)
    finally:
        stream.close()
        ssh.close()
