"""lab-env against real Vagrant and real container VMs: up, provision (idempotent, no package manager),
the install path through an apt proxy, SSH settings that never outlive their machine, clear failures."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from checker.labenv import main as lab_env
from provision.vagrant import Machine, VagrantError
from tests.integration.conftest import run_check
from tests.testenv import env as testenv

pytestmark = pytest.mark.integration

SHIM = """#!/bin/sh
echo "$0 $*" >> /var/log/package-manager-calls
exec /usr/bin/$(basename "$0") "$@"
"""


def run_lab_env(monkeypatch, project, *args: str) -> int:
    monkeypatch.chdir(project.root)
    for key, value in project.env.items():
        if key.startswith(("DOCKER_", "VAGRANT_", "LAB_")):  # as Vagrant will see them
            monkeypatch.setenv(key, value)
    return lab_env(list(args))


def test_up_then_check_then_noop_provision(project_factory, monkeypatch, capsys):
    project = project_factory("labenv")
    code = run_lab_env(monkeypatch, project, "up", "--provider", "docker")
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "provider: docker (as asked)" in out
    assert "ready: run `check-lab 07`" in out
    # lab-env up left the SSH settings where check-lab finds them without Vagrant.
    assert Machine(project.root).cached_ssh_config() is not None

    assert run_check(monkeypatch, project, "07") == 0
    capsys.readouterr()

    # Every call of apt-get or dpkg is logged from now on.
    ssh = project.ssh()
    try:
        for tool in ("apt-get", "dpkg"):
            res = ssh.run(f"printf '%s' '{SHIM}' | sudo tee /usr/local/sbin/{tool} >/dev/null && "
                          f"sudo chmod +x /usr/local/sbin/{tool}")
            assert res.ok, res.stderr
        code = run_lab_env(monkeypatch, project, "provision")
        out, err = capsys.readouterr()
        assert code == 0, out + err
        assert "0 step(s) changed, 12 unchanged, package manager called 0 time(s)" in out
        assert len(re.findall(r"^ ✓ unchanged ", out, re.M)) == 12  # compose-, tools-installed, hosts among them
        log = ssh.run("cat /var/log/package-manager-calls 2>/dev/null || true")
        assert log.stdout == ""
    finally:
        ssh.run("sudo rm -f /usr/local/sbin/apt-get /usr/local/sbin/dpkg /var/log/package-manager-calls")
        ssh.close()

    # The machine provisioned for its student: checked as alice's, refused as bob's (a copy of alice's
    # machine handed in by bob is refused the same way).
    assert run_lab_env(monkeypatch, project, "provision", "--student", "alice") == 0
    assert "check-lab.student=alice" not in capsys.readouterr().err
    report = project.root / "alice.json"
    code = run_check(monkeypatch, project, "07", "--observe", "--student", "alice", "--json", str(report))
    assert code == 1, capsys.readouterr()  # nothing of lab 07 is left to see: not judged, not refused
    data = json.loads(report.read_text())
    assert data["identity"]["student"] == "alice" and "check-lab.student=alice" in data["engine"]["labels"]
    ssh = project.ssh()
    try:  # the machine's own ID (a container VM gets one when it is provisioned)
        machine_id = ssh.run("cat /etc/machine-id").stdout.strip()
    finally:
        ssh.close()
    assert len(machine_id) == 32 and data["identity"]["machine_id"] == machine_id
    assert data["sources"]["engine"]["exit_status"] == 0 and "docker info" in data["sources"]["engine"]["command"]
    capsys.readouterr()
    assert run_check(monkeypatch, project, "07", "--observe", "--student", "bob") == 3
    err = capsys.readouterr().err
    assert "this machine is alice's, not bob's: its engine is labelled check-lab.student=alice" in err

    # --student also asks for the student's mark on their image (lab 07's addition for graders): check-lab
    # builds with it itself, ...
    assert run_check(monkeypatch, project, "07", "--student", "alice", "--json", str(report)) == 0
    data = json.loads(report.read_text())
    marked = {c["id"]: c for c in data["claims"]}["image-carries-students-mark"]
    assert marked["verdict"] == "pass" and len(data["claims"]) == 11
    assert any(d["kind"] == "addition" and "--label check-lab.student=alice" in d["here"] for d in data["departures"])
    capsys.readouterr()
    # ... and judges the student's own, built with the course's commands and the mark.
    from tests.student import Student, course_commands
    from tests.variants import LAB07

    ssh = project.ssh()
    student = Student(ssh)
    try:
        student.clone(LAB07, "labs/07-FS_layering")
        course = course_commands(LAB07 / "course" / "README.md")
        typed = [c.replace("docker build", "docker build --label check-lab.student=alice", 1)
                 if "Dockerfile-my-base-image " in c else c for c in course]
        assert sum("check-lab.student=alice" in c for c in typed) == 1

        def observed(student_id: str) -> dict:
            run_check(monkeypatch, project, "07", "--observe", "--student", student_id, "--json", str(report))
            capsys.readouterr()
            return {c["id"]: c for c in json.loads(report.read_text())["claims"]}

        # The course's commands exactly, without the mark: that claim, and only it, fails.
        assert student.do(course).ok
        unmarked = observed("alice")
        assert unmarked["image-carries-students-mark"]["verdict"] == "fail"
        assert unmarked["image-carries-students-mark"]["observed"].startswith("my-image:1.0 has no label check-lab.student")
        # With the mark: it passes, every other verdict as before.
        assert student.do(typed).ok
        marked = observed("alice")
        assert marked["image-carries-students-mark"]["verdict"] == "pass"
        assert {cid: c["verdict"] for cid, c in marked.items() if cid != "image-carries-students-mark"} == \
            {cid: c["verdict"] for cid, c in unmarked.items() if cid != "image-carries-students-mark"}
        # The machine handed to bob with alice's images on it: her mark, not his. (Provisioning restarted the
        # engine, whose event log the claims on the containers read: those are not compared here.)
        assert run_lab_env(monkeypatch, project, "provision", "--student", "bob") == 0
        capsys.readouterr()
        copied = observed("bob")
        assert copied["image-carries-students-mark"]["verdict"] == "fail"
        assert copied["image-carries-students-mark"]["observed"].endswith("alice's mark, not bob's")
    finally:
        ssh.run("docker rmi my-image:1.0 my-base-image:1.0 ubuntu:18.04 >/dev/null 2>&1; true", timeout=120)
        student.forget()
        ssh.close()


def test_install_path_through_the_apt_proxy(project_factory, monkeypatch, capsys, lab_env):
    # A VM without Docker and without a route out: the classroom apt-cacher-ng is its only way to packages.
    testenv.ensure_container_vm(lab_env, testenv.SUITE, packages="none")
    project = project_factory("install", {**testenv.vm_settings(testenv.SUITE, "none"), "LAB_VM_ISOLATED": "1"})
    log = testenv.RUN / "apt-cacher-ng" / "apt-cacher.log"
    before = log.read_text() if log.exists() else ""
    code = run_lab_env(monkeypatch, project, "up", "--provider", "docker", "--apt-proxy", lab_env["apt_proxy"],
                       "--docker-source", "distro=20.10")
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "changed   engine-installed: installed docker.io=20.10." in out  # the pinned release
    assert "changed   compose-installed: installed docker-compose 1." in out  # bookworm's Compose v1
    assert "apt uses the proxy" in out
    served = log.read_text()[len(before):]
    assert "docker.io_" in served  # the package came through the proxy

    report = project.root / "r.json"
    assert run_check(monkeypatch, project, "07", "--json", str(report)) == 0, capsys.readouterr().out
    assert json.loads(report.read_text())["result"] == "pass"

    # The same pin again: nothing to do. A release the apt sources lack: refused in one line, engine as it was.
    proxy = ("--apt-proxy", lab_env["apt_proxy"])
    assert run_lab_env(monkeypatch, project, "provision", *proxy, "--docker-source", "distro=20.10") == 0
    out = capsys.readouterr().out
    assert "unchanged engine-installed: docker.io 20.10." in out and "(20.10 wanted)" in out
    assert run_lab_env(monkeypatch, project, "provision", *proxy, "--docker-source", "distro=19.03") == 1
    out = "".join(capsys.readouterr())
    assert "the apt sources have no docker.io 19.03 (they have: 20.10." in out and "nothing changed" in out
    ssh = project.ssh()
    try:
        assert ssh.run("docker version --format '{{.Server.Version}}' | grep -q '^20[.]10[.]'", timeout=60).ok
    finally:
        ssh.close()


def test_settings_of_a_halted_or_recreated_machine_are_never_used(project_factory, monkeypatch, capsys):
    project = project_factory("recreate")
    project.up()
    assert run_check(monkeypatch, project, "00") == 0
    machine = Machine(project.root)
    assert machine.cached_ssh_config() is not None
    cache_file = machine.machine_dir()[0] / "check-lab-ssh.json"
    old_cache = cache_file.read_text()
    first_id = (machine.machine_dir()[0] / "id").read_text()

    # Halted: the cached settings are not tried blindly; Vagrant is asked, and says why.
    project.vagrant.halt()
    capsys.readouterr()
    code = run_check(monkeypatch, project, "07")
    err = capsys.readouterr().err
    assert code == 3
    assert "is stopped" in err and "vagrant up" in err

    # Destroyed and made again: a new machine, whose predecessor's settings are never used.
    project.destroy()
    project.up()
    second_id = (machine.machine_dir()[0] / "id").read_text()
    assert second_id != first_id
    # Even if the old machine's settings were still on disk, they belong to the destroyed machine: unused.
    cache_file.write_text(old_cache)
    assert machine.cached_ssh_config() is None

    capsys.readouterr()
    assert run_check(monkeypatch, project, "00") == 0
    capsys.readouterr()
    fresh = json.loads(cache_file.read_text())
    assert fresh["valid_for"]["id"] == second_id
    assert machine.cached_ssh_config() is not None


# ------------------------------------------------------------------------------------------------ failures


def test_vagrant_missing(project_factory, monkeypatch, capsys, tmp_path):
    project = project_factory("novagrant")
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("docker",):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bare / tool)
    monkeypatch.setenv("PATH", str(bare))
    code = run_lab_env(monkeypatch, project, "status")
    err = capsys.readouterr().err
    assert code == 3
    assert err.strip() == "lab-env: vagrant is not installed (https://developer.hashicorp.com/vagrant)"


def test_provider_missing(project_factory, monkeypatch, capsys):
    project = project_factory("novbox")
    code = run_lab_env(monkeypatch, project, "up", "--provider", "virtualbox")
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1
    assert "the virtualbox provider is not available here" in err and "VirtualBox" in err


def test_an_address_virtualbox_refuses_is_said_before_vagrant_starts(project_factory, monkeypatch, capsys):
    from provision.providers import VBOX_NETWORKS_CONF

    if VBOX_NETWORKS_CONF.exists():
        pytest.skip(f"{VBOX_NETWORKS_CONF} exists on this machine")
    project = project_factory("vboxnet", {"LAB_ADDRESS": "192.168.135.10"})  # the course's address
    code = run_lab_env(monkeypatch, project, "up", "--provider", "virtualbox")
    err = capsys.readouterr().err
    assert code == 3
    assert err.strip() == ("lab-env: VirtualBox allows host-only addresses only in 192.168.56.0/21 "
                           "(/etc/vbox/networks.conf is missing), not 192.168.135.10: add the line "
                           "`* 192.168.135.0/24` to /etc/vbox/networks.conf (as root), or set LAB_SUBNET "
                           "(and LAB_ADDRESS) to a range it allows")
    assert not (project.root / ".vagrant").exists()  # nothing made


def test_box_missing(project_factory, monkeypatch, capsys):
    testenv.ensure_libvirt()  # vagrant-libvirt asks libvirtd before it looks for the box
    project = project_factory("nobox", {"LAB_BOX": "check-lab/no-such-box",
                                        "LAB_BOX_URL": "file:///nonexistent/no-such-box.box"})
    code = run_lab_env(monkeypatch, project, "up", "--provider", "libvirt")
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1
    assert "box is not installed and could not be fetched" in err
    assert "check-lab/no-such-box" in err and "vagrant box add" in err


def test_libvirtd_not_answering(project_factory, monkeypatch, capsys):
    project = project_factory("nolibvirtd", {"LAB_BOX": "check-lab/no-such-box",
                                             "LAB_LIBVIRT_URI": "qemu+unix:///system?socket=/nonexistent/libvirt-sock"})
    code = run_lab_env(monkeypatch, project, "up", "--provider", "libvirt")
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1
    assert "the libvirt provider is not available here: libvirtd does not answer at qemu+unix:///system" in err
    assert "/nonexistent/libvirt-sock" in err


def test_boot_timeout(project_factory, monkeypatch, capsys, lab_env):
    project = project_factory("noboot", {"LAB_DOCKER_IMAGE": lab_env["no_sshd_image"], "LAB_BOOT_TIMEOUT": "10"})
    code = run_lab_env(monkeypatch, project, "up", "--provider", "docker")
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1
    assert "the machine did not boot in time" in err


def test_provisioning_step_failure_names_the_step(project_factory, monkeypatch, capsys):
    project = project_factory("badstep")
    code = run_lab_env(monkeypatch, project, "up", "--provider", "docker", "--image-store", "containerd")
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip() == ("lab-env: provisioning step daemon-config failed: the containerd image store needs "
                           "Docker 24 or newer; this VM has Docker 20.10.24")
    # The same step, run by Vagrant's own provisioner, gives the same one-line reason.
    machine = Machine(project.root, env={**project.env, "LAB_IMAGE_STORE": "containerd"})
    with pytest.raises(VagrantError) as caught:
        machine.provision()
    assert caught.value.kind == "provision-step"
    assert "provisioning step daemon-config failed: the containerd image store needs Docker 24" in str(caught.value)
