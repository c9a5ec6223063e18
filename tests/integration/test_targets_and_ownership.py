"""Targets other than the default, machines that are not ready, names the user owns, and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from provision.vagrant import Machine
from tests.integration.conftest import run_check
from tests.integration.test_negative import lab_state

pytestmark = pytest.mark.integration


def host_key_line(host: str, port: int) -> str:
    sock = paramiko.Transport((host, port))
    try:
        sock.start_client(timeout=10)
        key = sock.get_remote_server_key()
    finally:
        sock.close()
    return f"[{host}]:{port} {key.get_name()} {key.get_base64()}\n"


def test_ssh_target_with_identity_and_known_hosts(shared_vm, monkeypatch, tmp_path, capsys):
    cfg = Machine(shared_vm.root).ssh_config()
    target = f"ssh://{cfg.user}@{cfg.host}:{cfg.port}"
    known = tmp_path / "known_hosts"

    # Unknown host: refused, nothing run.
    known.write_text("")
    code = run_check(monkeypatch, shared_vm, "07", "--target", target, "--identity", cfg.key_files[0],
                     "--known-hosts", str(known))
    err = capsys.readouterr().err
    assert code == 3 and "is not in known_hosts: refusing to connect" in err

    # A different key of the same type on record (the machine was re-created): refused as a changed key,
    # which is told apart from an unknown host.
    offered = host_key_line(cfg.host, cfg.port).split()[1]
    fake = {"ssh-rsa": lambda: paramiko.RSAKey.generate(2048),
            "ecdsa-sha2-nistp256": lambda: paramiko.ECDSAKey.generate()}.get(offered, lambda: paramiko.ECDSAKey.generate())()
    known.write_text(f"[{cfg.host}]:{cfg.port} {fake.get_name()} {fake.get_base64()}\n")
    code = run_check(monkeypatch, shared_vm, "07", "--target", target, "--identity", cfg.key_files[0],
                     "--known-hosts", str(known))
    err = capsys.readouterr().err
    assert code == 3 and "does not match known_hosts" in err and "not in known_hosts" not in err

    # The right key: the whole lab runs over this target.
    known.write_text(host_key_line(cfg.host, cfg.port))
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, shared_vm, "07", "--target", target, "--identity", cfg.key_files[0],
                     "--known-hosts", str(known), "--json", str(report))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert json.loads(report.read_text())["target"] == target


def test_machine_not_created_or_stopped_exits_3(project_factory, monkeypatch, capsys):
    project = project_factory("notup")
    code = run_check(monkeypatch, project, "07")
    err = capsys.readouterr().err
    assert code == 3
    assert "has not been created" in err and "vagrant up" in err


def test_names_the_user_owns_stop_the_check_unless_replace(shared_vm, monkeypatch, tmp_path, capsys):
    ssh = shared_vm.ssh()
    try:
        # The student's own container and image under the lab's names.
        setup = ssh.run("docker pull -q ubuntu:18.04 >/dev/null && docker tag ubuntu:18.04 my-image:1.0 && "
                        "docker run -dit --name my_container_2 ubuntu:18.04 bash >/dev/null && "
                        "printf 'precious\\n' > ~/notes.txt", timeout=300)
        assert setup.ok, setup.stderr
        before = lab_state(shared_vm)

        code = run_check(monkeypatch, shared_vm, "07")
        err = capsys.readouterr().err
        assert code == 3
        assert "container my_container_2, image my-image:1.0 already exist" in err and "--replace" in err
        assert lab_state(shared_vm) == before

        report = tmp_path / "r.json"
        code = run_check(monkeypatch, shared_vm, "07", "--replace", "--json", str(report))
        out = capsys.readouterr().out
        data = json.loads(report.read_text())
        # Every claim holds (ubuntu:18.04 was there already: the pull claim is judged from the stored image).
        assert code == 0, out
        assert all(c["verdict"] == "pass" for c in data["claims"]), data["claims"]
        assert any("put your container my_container_2 back" in n for n in data["notes"])
        # Everything of the user's is back, under its own name, with the same ID; their file is untouched.
        assert lab_state(shared_vm) == before
        assert ssh.run("cat ~/notes.txt").stdout == "precious\n"
        running = ssh.run("docker inspect -f '{{.State.Running}}' my_container_2")
        assert running.stdout.strip() == "true"
    finally:
        ssh.run("docker rm -f my_container_2; docker rmi my-image:1.0 ubuntu:18.04; rm -f ~/notes.txt")
        ssh.close()


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "SIGTERM"),
                                           (signal.SIGHUP, 129, "SIGHUP")])
def test_a_signal_cleans_up_and_names_itself(shared_vm, tmp_path, sig, code, word):
    """Ctrl-C, a cancelled CI job (SIGTERM) or a closed terminal (SIGHUP) mid-run: what the run created is
    removed, then the exit code names the signal."""
    before = lab_state(shared_vm)
    check_lab = Path(sys.executable).parent / "check-lab"
    proc = subprocess.Popen([str(check_lab), "07", "--json", str(tmp_path / "r.json")], cwd=shared_vm.root,
                            env=shared_vm.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ssh = shared_vm.ssh()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if "my_container_3" in ssh.run("docker ps --format '{{.Names}}'").stdout:
                break
            time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail("the containers never started: " + proc.communicate()[0][-3000:])
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        ssh.close()
    assert proc.returncode == code, out
    assert word in out.splitlines()[-1]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["result"] == "interrupted" and data["exit_code"] == code
    assert lab_state(shared_vm) == before


def container_id(project) -> str:
    return Machine(project.root).machine_dir()[0].joinpath("id").read_text().strip()


@pytest.mark.parametrize("user", ["", "vagrant@"])
def test_docker_exec_target(shared_vm, monkeypatch, tmp_path, capsys, user):
    """docker://CONTAINER: the lab runs in the container VM through `docker exec` (as root, or as vagrant)."""
    before = lab_state(shared_vm)
    target = f"docker://{user}{container_id(shared_vm)}"
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, shared_vm, "07", "--target", target, "--json", str(report))
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["target"] == target and all(c["verdict"] == "pass" for c in data["claims"])
    assert lab_state(shared_vm) == before


def test_docker_exec_target_ends_a_hanging_step_inside_the_container(shared_vm, monkeypatch, tmp_path, capsys):
    from tests.integration.test_faults import insert_step, lab_with

    folder = lab_with(tmp_path, lambda d: insert_step(d, "pull", {"id": "hang", "title": "A command that hangs",
                                                                  "run": "sleep 3600", "timeout": 2}))
    started = time.monotonic()
    code = run_check(monkeypatch, shared_vm, str(folder), "--target", f"docker://{container_id(shared_vm)}")
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - started < 60 and "step hang timed-out" in err
    ssh = shared_vm.ssh()
    try:
        assert "sleep 3600" not in ssh.run("ps -eo args").stdout
    finally:
        ssh.close()


def test_a_missing_or_stopped_container_target_exits_3(shared_vm, monkeypatch, capsys):
    code = run_check(monkeypatch, shared_vm, "07", "--target", "docker://no-such-container-here")
    err = capsys.readouterr().err
    assert code == 3 and "cannot reach docker://no-such-container-here" in err
