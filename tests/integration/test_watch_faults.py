"""Faults while a student is watched: the VM goes away, the SSH connection drops, the student restarts
dockerd, the student's command floods the event stream. Each ends with a one-line cause and exit 3, or the
watch resumes and still judges the lab."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import sh
from tests.integration.test_faults import START_DOCKERD
from tests.integration.test_student import COMMANDS, end_watch, start_watch, undo
from tests.student import Student
from tests.variants import LAB07

pytestmark = pytest.mark.integration


def typed(vm, commands: list[str]):
    student = Student(vm.ssh())
    try:
        student.clone(LAB07, "labs/07-FS_layering")
        res = student.do(commands)
        assert res.ok, res.stderr[-2000:]
    finally:
        student.ssh.close()


def test_the_vm_goes_away(project_factory, tmp_path):
    from provision.vagrant import Machine

    vm = project_factory("watch-vm-gone")
    vm.up()
    watch = start_watch(vm, tmp_path / "w.json")
    container = Machine(vm.root).machine_dir()[0].joinpath("id").read_text().strip()
    subprocess.run(["docker", "kill", container], env=vm.env, check=True, capture_output=True)
    code, out = end_watch(watch, wait=120)
    assert code == 3, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("check-lab: the watch lost the machine:"), last


def test_the_student_restarts_dockerd_and_the_watch_resumes(shared_vm, tmp_path):
    watch = start_watch(shared_vm, tmp_path / "w.json")
    try:
        assert sh(shared_vm, "sudo start-stop-daemon --stop --pidfile /var/run/docker-ssd.pid --retry 30").ok
        assert sh(shared_vm, START_DOCKERD).ok
        typed(shared_vm, COMMANDS)
        code, out = end_watch(watch)
        assert code == 0, out
        assert "the engine answers again: watching on" in out
    finally:
        if watch.poll() is None:
            watch.kill()
        undo(shared_vm)


def test_the_ssh_connection_drops_and_the_watch_resumes(shared_vm, tmp_path):
    watch = start_watch(shared_vm, tmp_path / "w.json")
    try:
        # For three seconds the VM answers every packet to its sshd with a reset, while something happens
        # (so that the watch's connection carries data and is torn down); then it lets SSH in again.
        cut = ("sudo nohup sh -c 'iptables -I INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset; "
               "sleep 1; docker run --rm hello-world >/dev/null 2>&1; docker rmi hello-world >/dev/null 2>&1; "
               "sleep 2; iptables -D INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset' "
               ">/dev/null 2>&1 </dev/null &")
        sh(shared_vm, cut, timeout=30)
        import time

        time.sleep(6)
        typed(shared_vm, COMMANDS)
        code, out = end_watch(watch)
        assert code == 0, out
        data = json.loads((tmp_path / "w.json").read_text())
        assert all(c["verdict"] == "pass" for c in data["claims"])
    finally:
        if watch.poll() is None:
            watch.kill()
        sh(shared_vm, "sudo iptables -D INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset 2>/dev/null; true")
        undo(shared_vm)


def test_a_flood_of_events_does_not_drown_the_watch(shared_vm, tmp_path):
    watch = start_watch(shared_vm, tmp_path / "w.json")
    try:
        flood = ("nohup sh -c 'echo $$ > /tmp/check-lab-flood.pid; for i in $(seq 150); do "
                 "docker network create flood$i >/dev/null; docker network rm flood$i >/dev/null; done' "
                 ">/dev/null 2>&1 </dev/null &")
        assert sh(shared_vm, flood).ok
        typed(shared_vm, COMMANDS)
        code, out = end_watch(watch)
        assert code == 0, out
    finally:
        if watch.poll() is None:
            watch.kill()
        # The flood may outlive the watch: let it end (by its PID) before removing what it left.
        sh(shared_vm, "p=$(cat /tmp/check-lab-flood.pid 2>/dev/null); "
                      "while [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; do sleep 1; done; rm -f /tmp/check-lab-flood.pid; "
                      "for n in $(docker network ls -q --filter name=flood); do docker network rm $n; done "
                      ">/dev/null 2>&1; true", timeout=300)
        undo(shared_vm)
