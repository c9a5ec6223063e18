"""The fault suite against a real container VM: every fault a clear one-line answer and the documented
exit code, and nothing of the student's lost: the VM's containers and images are listed before and
after each case (the student has a container and an image of their own there the whole time).

The faults that need no VM (lab specs, command line, unreachable targets) are in tests/unit.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest
import yaml

from provision.vagrant import Machine
from tests.integration.conftest import run_check, sh
from tests.integration.test_negative import lab_state
from tests.variants import LAB07

pytestmark = pytest.mark.integration

CHECK_LAB = Path(sys.executable).parent / "check-lab"


@pytest.fixture(scope="module")
def vm(shared_vm):
    """The shared VM, with a container and an image of the student's own that every case must leave alone."""
    ssh = shared_vm.ssh()
    res = ssh.run("tar cf - --files-from /dev/null | docker import - student/own:1 >/dev/null && "
                  "docker create --name student_box student/own:1 /nothing >/dev/null", timeout=120)
    assert res.ok, res.stderr
    ssh.close()
    yield shared_vm
    sh(shared_vm, "docker rm student_box >/dev/null && docker rmi student/own:1 >/dev/null", timeout=120)


@pytest.fixture
def untouched(vm):
    """Asserts that the case left the VM's containers and images as they were."""
    before = lab_state(vm)
    assert any("student_box" in line for line in before)
    yield
    assert lab_state(vm) == before


def lab_with(tmp_path: Path, change) -> Path:
    """A copy of lab 07 with its lab.yaml changed by `change(data)`."""
    folder = tmp_path / "07-fault"
    shutil.copytree(LAB07, folder)
    data = yaml.safe_load((folder / "lab.yaml").read_text())
    change(data)
    (folder / "lab.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def insert_step(data: dict, after: str, step: dict) -> None:
    index = next(i for i, s in enumerate(data["steps"]) if s["id"] == after)
    data["steps"].insert(index + 1, step)


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


START_DOCKERD = ("sudo start-stop-daemon --start --oknodo --background --no-close --exec /usr/sbin/dockerd "
                 "--pidfile /var/run/docker-ssd.pid --make-pidfile -- -p /var/run/docker.pid "
                 ">>/tmp/dockerd.log 2>&1; for i in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; "
                 "sleep 0.5; done; exit 1")


def test_dockerd_stopped(vm, untouched, monkeypatch, capsys):
    assert sh(vm, "sudo start-stop-daemon --stop --pidfile /var/run/docker-ssd.pid --retry 30").ok
    try:
        code = run_check(monkeypatch, vm, "07")
        err = one_line(capsys.readouterr().err)
        assert code == 3
        assert "Docker is not usable" in err and "the Docker daemon is not running" in err
    finally:
        assert sh(vm, START_DOCKERD).ok


def test_ports_the_lab_publishes_already_in_use(vm, untouched, monkeypatch, capsys):
    """Lab 14 publishes ports 8000 and 9000: with something of the student's own listening on both, one line
    naming them, exit 3 before any step (also with --replace: a listener cannot be set aside), and what
    listens still running."""
    started = sh(vm, "for port in 8000 9000; do nohup python3 -m http.server $port >/dev/null 2>&1 </dev/null & "
                     "echo $!; done; for i in $(seq 40); do timeout 1 bash -c '</dev/tcp/127.0.0.1/9000' 2>/dev/null "
                     "&& timeout 1 bash -c '</dev/tcp/127.0.0.1/8000' 2>/dev/null && exit 0; sleep 0.25; done; exit 1")
    pids = started.stdout.split()
    try:
        assert started.ok and len(pids) == 2, started.stderr
        for args in ((), ("--replace",)):
            code = run_check(monkeypatch, vm, "14", *args)
            err = one_line(capsys.readouterr().err)
            assert code == 3
            assert "ports 8000, 9000 of the target are in use (something listens there)" in err, err
            assert "ss -ltnp" in err
        assert sh(vm, f"kill -0 {' '.join(pids)}").ok
        # One of them free: the other is named alone.
        assert sh(vm, f"kill {pids[0]}; for i in $(seq 40); do timeout 1 bash -c '</dev/tcp/127.0.0.1/8000' "
                      "2>/dev/null || exit 0; sleep 0.25; done; exit 1").ok
        assert run_check(monkeypatch, vm, "14") == 3
        assert "port 9000 of the target is in use" in one_line(capsys.readouterr().err)
    finally:
        sh(vm, f"kill {' '.join(pids)} 2>/dev/null; true")


def test_user_not_allowed_to_use_docker(vm, untouched, monkeypatch, capsys):
    assert sh(vm, "sudo gpasswd -d vagrant docker").ok
    try:
        code = run_check(monkeypatch, vm, "07")
        err = one_line(capsys.readouterr().err)
        assert code == 3
        assert "may not use Docker" in err and "docker group" in err
    finally:
        assert sh(vm, "sudo usermod -aG docker vagrant").ok


def test_step_that_hangs_times_out_and_cleanup_still_happens(vm, untouched, monkeypatch, capsys, tmp_path):
    folder = lab_with(tmp_path, lambda d: insert_step(d, "run", {"id": "hang", "title": "A command that hangs",
                                                                 "run": "sleep 3600", "timeout": 2}))
    report = tmp_path / "r.json"
    started = time.monotonic()
    code = run_check(monkeypatch, vm, str(folder), "--json", str(report))
    err = one_line(capsys.readouterr().err)
    assert code == 1 and time.monotonic() - started < 60
    assert err.startswith("check-lab: step hang timed-out: no answer within 2s")
    data = json.loads(report.read_text())
    statuses = {s["id"]: s["status"] for s in data["steps"]}
    assert statuses["hang"] == "timed-out" and statuses["run"] == "passed"
    assert [s for s, st in statuses.items() if st == "not-run"] == ["ps", "ps-size", "container-dirs",
                                                                     "container-dirs-du", "stop"]
    assert {c["verdict"] for c in data["claims"] if c["id"] == "containers-stopped"} == {"error"}
    # The hanging command itself was ended on the target.
    assert "sleep 3600" not in sh(vm, "ps -eo args").stdout


def test_observe_mode_reports_a_change_made_while_it_looked(vm, untouched, monkeypatch, capsys, tmp_path):
    """The engine changed during an observe run (here by a lab's step that claims only to look and does not):
    the engine's own log says what changed, and the report says the engine was not left as found."""
    meddler = {"id": "meddle", "title": "A look that is not one", "observe": True,
               "run": "docker network create check-lab-meddler >/dev/null"}
    folder = lab_with(tmp_path, lambda d: insert_step(d, "run", meddler))
    report = tmp_path / "r.json"
    try:
        run_check(monkeypatch, vm, str(folder), "--observe", "--json", str(report))
        out = capsys.readouterr().out
        left = json.loads(report.read_text())["fingerprint"]
        assert left["changes"] == ["network check-lab-meddler create"] and left["unchanged"] is False
        assert "the engine changed during the run" in out and "network check-lab-meddler create" in out
    finally:
        sh(vm, "docker network rm check-lab-meddler >/dev/null 2>&1; true")


def test_base_image_cannot_be_pulled(vm, untouched, monkeypatch, capsys):
    code = run_check(monkeypatch, vm, "07", "--set", "base_image=127.0.0.1:5999/ubuntu:18.04")
    err = one_line(capsys.readouterr().err)
    assert code == 1
    assert err.startswith("check-lab: step pull failed:")
    assert "cannot be reached" in err and "10 claim(s) not judged" in err


def test_ten_megabytes_of_output_and_output_that_is_not_utf8(vm, untouched, monkeypatch, capsys, tmp_path):
    def change(data):
        insert_step(data, "image-ls", {"id": "flood", "title": "10 MB of output",
                                       "run": "head -c 10000000 /dev/zero | tr '\\0' x"})
        insert_step(data, "flood", {"id": "latin1", "title": "Output that is not UTF-8",
                                    "run": "printf 'caf\\351 cr\\350me\\n'"})

    folder = lab_with(tmp_path, change)
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, vm, str(folder), "--json", str(report))
    out = capsys.readouterr().out
    assert code == 0, out
    steps = {s["id"]: s for s in json.loads(report.read_text())["steps"]}
    assert steps["flood"]["status"] == "passed"
    assert len(steps["flood"]["stdout"]) < 100_000  # kept short in the report
    assert "characters left out" in steps["flood"]["stdout"]
    assert steps["latin1"]["stdout"] == "caf\ufffd cr\ufffdme\n"


def test_full_disk_in_the_vm(vm, untouched, monkeypatch, capsys):
    fill = ("sudo mount -t tmpfs -o size=256k tmpfs /tmp && sudo chmod 1777 /tmp && "
            "(dd if=/dev/zero of=/tmp/fill bs=4k 2>/dev/null; true)")
    assert sh(vm, fill).ok
    try:
        code = run_check(monkeypatch, vm, "07")
        err = one_line(capsys.readouterr().err)
        assert code == 3
        assert "the machine's disk is full" in err
    finally:
        assert sh(vm, "sudo umount /tmp").ok


def test_two_runs_at_once(vm, untouched, monkeypatch, capsys, tmp_path):
    assert sh(vm, "rm -f ~/.check-lab/lock.info").ok  # what an earlier run wrote must not pass for the first's
    first = subprocess.Popen([str(CHECK_LAB), "07"], cwd=vm.root, env=vm.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            if "check-lab 07" in sh(vm, "cat ~/.check-lab/lock.info 2>/dev/null || true").stdout:
                break
            time.sleep(0.3)
        code = run_check(monkeypatch, vm, "07", "--lock-wait", "2")
        err = one_line(capsys.readouterr().err)
        assert code == 3
        assert "the machine is busy: check-lab 07 of" in err and "is using it" in err
    finally:
        assert first.wait(timeout=180) == 0


def test_shell_metacharacters_in_set_values_run_nothing(vm, untouched, monkeypatch, capsys, tmp_path):
    def change(data):
        data["variables"]["greeting"] = {"default": "hello", "description": "free text"}
        insert_step(data, "pull", {"id": "greet", "title": "Say something", "run": "echo {{ greeting }}"})

    folder = lab_with(tmp_path, change)
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, vm, str(folder), "--set", "greeting=x; touch /tmp/owned $(touch /tmp/owned2)",
                     "--json", str(report))
    assert code == 0, capsys.readouterr().out
    greet = next(s for s in json.loads(report.read_text())["steps"] if s["id"] == "greet")
    assert greet["stdout"] == "x; touch /tmp/owned $(touch /tmp/owned2)\n"
    assert sh(vm, "ls /tmp/owned /tmp/owned2 2>&1 || true").stdout.count("No such file") == 2

    code = run_check(monkeypatch, vm, str(folder), "--set", "greeting=two\nlines")
    assert code == 2 and "must be one line" in one_line(capsys.readouterr().err)


def test_connection_dropping_mid_run_then_the_next_run_recovers(vm, monkeypatch, capsys, tmp_path):
    before = lab_state(vm)
    proc = subprocess.Popen([str(CHECK_LAB), "07", "--json", str(tmp_path / "r.json")], cwd=vm.root, env=vm.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    container = Machine(vm.root).machine_dir()[0].joinpath("id").read_text().strip()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if "my_container_5" in sh(vm, "docker ps --format '{{.Names}}'").stdout:
            break
        time.sleep(0.3)
    # The machine goes away under the run (its container VM is killed: the SSH connection drops).
    subprocess.run(["docker", "kill", container], env=vm.env, check=True, capture_output=True)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, out
    assert "connection" in out.splitlines()[-1] and "lost" in out.splitlines()[-1]

    vm.up()
    folders = "ls -d /tmp/check-lab.* 2>/dev/null | sed 's|^/tmp/||'; true"
    left = set(sh(vm, folders).stdout.split())
    # The next run finds the interrupted run's containers and images, removes them, and passes.
    code = run_check(monkeypatch, vm, "07", "--json", str(tmp_path / "r2.json"))
    assert code == 0, capsys.readouterr().out
    notes = json.loads((tmp_path / "r2.json").read_text())["notes"]
    assert any("left over by an interrupted check-lab run" in n for n in notes)
    # Its work folder too (the killed run's /tmp survives the machine's restart): no run's folder is left.
    removed = [m.group(1) for n in notes
               if (m := re.fullmatch(r"removed the work folder (check-lab\.[0-9a-f]{16}) of an interrupted check-lab run", n))]
    assert len(removed) == 1 and removed[0] in left, (notes, left)
    assert removed[0] not in sh(vm, folders).stdout.split()
    assert lab_state(vm) == before


# ------------------------------------------------------------------------------------------------ SSH


def test_wrong_key(vm, monkeypatch, capsys, tmp_path):
    cfg = Machine(vm.root).ssh_config()
    key = tmp_path / "wrong_key"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(key))
    known = tmp_path / "known_hosts"
    transport = paramiko.Transport((cfg.host, cfg.port))
    transport.start_client(timeout=10)
    host_key = transport.get_remote_server_key()
    transport.close()
    known.write_text(f"[{cfg.host}]:{cfg.port} {host_key.get_name()} {host_key.get_base64()}\n")
    code = run_check(monkeypatch, vm, "07", "--target", f"ssh://vagrant@{cfg.host}:{cfg.port}",
                     "--identity", str(key), "--known-hosts", str(known))
    err = one_line(capsys.readouterr().err)
    assert code == 3 and "SSH authentication to" in err and "failed" in err


def test_ssh_that_accepts_tcp_but_never_answers(monkeypatch, capsys, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    started = time.monotonic()
    try:
        code = run_check_plain(monkeypatch, "07", "--target", f"ssh://vagrant@127.0.0.1:{server.getsockname()[1]}",
                               "--known-hosts", str(tmp_path / "kh"), "--connect-timeout", "2")
    finally:
        server.close()
    err = one_line(capsys.readouterr().err)
    assert code == 3 and time.monotonic() - started < 15
    assert "does not answer as an SSH server" in err


def run_check_plain(monkeypatch, *args: str) -> int:
    from checker.cli import main

    return main(list(args))


def test_interrupt_signal_names_what_it_does(vm, untouched, tmp_path):
    """Ctrl-C in the middle of the build: exit 130, a one-line reason, and the lab's things removed."""
    proc = subprocess.Popen([str(CHECK_LAB), "07"], cwd=vm.root, env=vm.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if "my-base-image" in sh(vm, "docker image ls --format '{{.Repository}}'").stdout:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert one_line(err) == "check-lab: interrupted; what the run had created is cleaned up"
