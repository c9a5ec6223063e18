"""Lab 11 on the course's three swarm machines (`vagrant up swarmmanager swarmnode1 swarmnode2`), as
container VMs on the Vagrantfile's private network: one session per machine, the join token captured from
`init`, every machine left as it was found."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import pytest

from provision.machines import MachineData
from tests.integration.conftest import on, run_check
from tests.variants import SWARM_VARIANTS, make_course_variant

SWARM = ("swarmmanager", "swarmnode1", "swarmnode2")


def vagrant(project, *args: str, timeout: float = 900) -> None:
    done = subprocess.run(["vagrant", *args], cwd=project.root, env=project.env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


RESTART_ENGINE = ("sudo -n sh -c 'start-stop-daemon --stop --pidfile /var/run/docker-ssd.pid --remove-pidfile --retry 20; "
                  "start-stop-daemon --start --oknodo --background --no-close --exec \"$(command -v dockerd)\" "
                  "--pidfile /var/run/docker-ssd.pid --make-pidfile -- -p /var/run/docker.pid >>/var/log/docker.log 2>&1'; "
                  "for i in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1")


def fresh(project) -> None:
    """The swarm machines' engines started again: on a kernel without IP_VS (this host's, in container VMs)
    an engine that has been a swarm manager keeps a broken ingress network until it restarts, and a second
    swarm's services never start there (what `vagrant reload` does for a student, in seconds)."""
    for machine in SWARM:
        res = on(project, machine, RESTART_ENGINE, timeout=120)
        assert res.ok, res.stderr


@pytest.fixture(scope="module")
def swarm(lab_env, tmp_path_factory):
    from tests.integration.conftest import VagrantProject

    # docker-vm at the course's address, its ports 8000 and 9000 forwarded to free ports of the host's loopback.
    ports = free_ports(2)
    project = VagrantProject(tmp_path_factory.mktemp("swarm"), lab_env, {
        "LAB_ADDRESS": "192.168.135.10", "LAB_FORWARD_PORTS": f"8000:{ports[0]},9000:{ports[1]}"})
    project.ports = ports
    vagrant(project, "up", *SWARM, "--provider=docker")
    yield project
    subprocess.run(["vagrant", "destroy", "-f", *SWARM], cwd=project.root, env=project.env, capture_output=True, timeout=600)


def free_ports(count: int) -> list[int]:
    held = [socket.socket() for _ in range(count)]
    try:
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


# (Not the images: a swarm service pulls nginx by digest, untagged, which check-lab does not remove yet.)
STATE = ("docker info --format '{{.Swarm.LocalNodeState}}'; docker ps -aq | wc -l; docker service ls -q 2>/dev/null | wc -l; "
         "ls -A ~/.check-lab 2>/dev/null | grep -v '^lock' | wc -l")
# ... and the networks, for the labs that make one (lab 12's overlay).
STATE_AND_NETWORKS = STATE + "; docker network ls -q | wc -l"


def test_machines_know_each_other_by_name(swarm, monkeypatch, capsys):
    from checker.labenv import main as lab_env

    monkeypatch.chdir(swarm.root)
    for key, value in swarm.env.items():
        if key.startswith(("DOCKER_", "VAGRANT_")):
            monkeypatch.setenv(key, value)
    assert lab_env(["--no-color", "--machines", "swarm", "status"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SWARM) and out.count("running") == 3, out
    res = on(swarm, "swarmnode1", "getent hosts swarmmanager swarmnode2; hostname")
    assert res.ok, res.stderr
    assert "192.168.135.100" in res.stdout and "192.168.135.102" in res.stdout
    assert res.stdout.split()[-1] == "swarmnode1"


def test_docker_vm_has_the_course_address_and_forwarded_ports(swarm):
    vagrant(swarm, "up", "--provider=docker")  # the primary machine only: docker-vm
    try:
        res = on(swarm, "default", "hostname; hostname -I; getent hosts swarmmanager; "
                                   "timeout 5 bash -c '</dev/tcp/swarmmanager/22' && echo reached")
        assert res.ok, res.stderr
        assert res.stdout.split()[0] == "docker-vm"
        assert "192.168.135.10" in res.stdout.splitlines()[1].split() and "192.168.135.100" in res.stdout, res.stdout
        assert res.stdout.rstrip().endswith("reached")
        assert on(swarm, "swarmnode1", "getent hosts docker-vm").stdout.split()[:2] == ["192.168.135.10", "docker-vm"]
        # What answers on docker-vm's port 8000 (lab 13's WordPress) answers on the host's forwarded port.
        assert on(swarm, "default", "mkdir -p /tmp/fwd && echo forwarded > /tmp/fwd/index.html && "
                                    "(setsid python3 -m http.server 8000 --directory /tmp/fwd >/dev/null 2>&1 &)").ok
        body = ""
        for _ in range(40):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{swarm.ports[0]}/", timeout=5) as answer:
                    body = answer.read().decode()
                break
            except OSError:
                time.sleep(0.25)
        assert body.strip() == "forwarded"
    finally:
        subprocess.run(["vagrant", "destroy", "-f", "default"], cwd=swarm.root, env=swarm.env, capture_output=True,
                       timeout=600)


def typed_on(project, machine: str, command: str, timeout: float = 900):
    """A student types one command in `vagrant ssh MACHINE`."""
    from tests.student import Student

    ssh = project.ssh(machine)
    try:
        return Student(ssh).do([command], timeout=timeout)
    finally:
        ssh.close()


def observed(monkeypatch, project, lab: str, tmp_path) -> tuple[int, dict]:
    report = tmp_path / f"observe-{lab}.json"
    code = run_check(monkeypatch, project, lab, "--target", f"vagrant:{project.root}", "--observe",
                     "--report", f"json:{report}")
    return code, json.loads(report.read_text())


def test_a_student_who_typed_labs_11_and_12_passes_what_observe_sees(swarm, monkeypatch, tmp_path):
    """The course's commands of labs 11 and 12 as printed (tests/student.py, type_on_machines), then
    `check-lab NN --observe`: what the machines still show passes, nothing is judged false, and nothing is
    changed on any machine."""
    from tests.student import OBSERVED_ON_MACHINES, type_on_machines

    fresh(swarm)
    try:
        type_on_machines("11", lambda machine, command: typed_on(swarm, machine, command))
        code, data = observed(monkeypatch, swarm, "11", tmp_path)
        got = {c["id"]: c["verdict"] for c in data["claims"]}
        assert code == 1 and "fail" not in got.values(), data["claims"]
        assert {cid for cid, v in got.items() if v == "pass"} == OBSERVED_ON_MACHINES["11"]
        assert got.pop("routing-mesh") in ("n/a", "error")  # n/a on a kernel without IP_VS
        assert {cid for cid, v in got.items() if v == "error"} == {"five-replicas", "scaled-replicas", "service-removed"}
        assert data["fingerprint"]["unchanged"]

        # Lab 12 on lab 11's swarm, its prerequisite.
        type_on_machines("12", lambda machine, command: typed_on(swarm, machine, command))
        code, data = observed(monkeypatch, swarm, "12", tmp_path)
        got = {c["id"]: c["verdict"] for c in data["claims"]}
        assert "fail" not in got.values(), data["claims"]
        assert {cid for cid, v in got.items() if v == "pass"} == OBSERVED_ON_MACHINES["12"]
        # busybox2's pings are gone with it: not judged; n/a on kernels without ESP, whatever was typed.
        reach = got["reaches-across-nodes"]
        assert reach in ("n/a", "error") and code == (0 if reach == "n/a" else 1)
        assert data["fingerprint"]["unchanged"]

        # Graded as a class (--targets): the swarm as a Vagrant folder, and as one target per machine.
        each = ",".join(f"{m}=vagrant:{swarm.root}#{m}" for m in SWARM)
        listing = tmp_path / "class.txt"
        listing.write_text(f"alice = vagrant:{swarm.root}\nbob = {each}\n")
        report = tmp_path / "class.json"
        assert run_check(monkeypatch, swarm, "12", "--targets", str(listing), "--observe", "-j", "1",
                         "--report", f"json:{report}") == code
        targets = json.loads(report.read_text())["targets"]
        assert [t["label"] for t in targets] == ["alice", "bob"]
        assert [{c["id"]: c["verdict"] for c in t["report"]["claims"]} for t in targets] == [got, got]
    finally:
        leave_the_students_swarm(swarm)


def leave_the_students_swarm(project) -> None:
    on(project, "swarmnode1", "docker rm -f busybox1 >/dev/null 2>&1; true")
    for machine in SWARM:
        # (docker_gwbridge, the bridge a swarm makes, stays after a plain `leave`: the machines go back to
        # how they were before the student's swarm.)
        on(project, machine, "docker swarm leave --force >/dev/null 2>&1; docker network rm docker_gwbridge "
                             ">/dev/null 2>&1; docker image rm -f busybox $(docker image ls -q nginx) >/dev/null 2>&1; "
                             "true")


def lab_sets(lab: str) -> tuple[str, ...]:
    # Lab 11 scales to 6 replicas instead of the course's 50: the same claim, a fraction of the time on two cores.
    return ("--set", "replicas=6") if lab.startswith("11") else ()


def test_lab_12_passes_on_the_swarm_and_leaves_every_machine_as_found(swarm, monkeypatch, tmp_path):
    fresh(swarm)
    # swarmnode1 has a docker_gwbridge of its own (as Docker's documentation shows, made before a swarm to
    # choose its subnet; or left by an earlier swarm's plain `leave`): the lab's swarm uses it, and leaves it.
    on(swarm, "swarmnode1", "docker network rm docker_gwbridge >/dev/null 2>&1; true")
    assert on(swarm, "swarmnode1", "docker network create --subnet 10.211.0.0/16 "
                                   "--opt com.docker.network.bridge.name=docker_gwbridge "
                                   "--opt com.docker.network.bridge.enable_icc=false "
                                   "--opt com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge").ok
    # swarmnode2's engine has made and removed a network since it started (as lab 11's swarm does): Docker hands
    # out the next subnet each time, 172.19.0.0/16 now, the lab's own; the lab's step makes swarmnode2's bridge on
    # the first free one instead. (On these container VMs the lab passed without that step too: the failure it
    # prevents, a worker that cannot attach to the lab's network, shows on the libvirt VMs, whose engines make the
    # bridge as they join, with the ingress network: test_real_vm.py runs lab 12 there right after lab 11.)
    assert on(swarm, "swarmnode2", "docker network create check-lab-turn >/dev/null && "
                                   "docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' check-lab-turn "
                                   "&& docker network rm check-lab-turn >/dev/null").stdout.strip() == "172.18.0.0/16"
    before = {m: on(swarm, m, STATE_AND_NETWORKS).stdout for m in SWARM}
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, swarm, "12", "--target", f"vagrant:{swarm.root}", "--report", f"json:{report}")
    data = json.loads(report.read_text())
    verdicts = {c["id"]: c["verdict"] for c in data["claims"]}
    assert code == 0, data
    # The encrypted network's traffic is IPsec (ESP): judged where both workers' kernels have it.
    esp = [s["stdout"].strip() for s in data["steps"] if s["id"].startswith("esp-")]
    assert verdicts.pop("reaches-across-nodes") == ("pass" if "none" not in esp else "n/a"), data["claims"]
    assert set(verdicts.values()) == {"pass"} and len(verdicts) == 5
    steps = {s["id"]: s for s in data["steps"]}
    address = steps["address"]["stdout"].strip()
    assert address.startswith("172.19.") and f"ping -c 3 -W 2 {address} 2>" in steps["ping"]["command"]
    assert {m: on(swarm, m, STATE_AND_NETWORKS).stdout for m in SWARM} == before
    # swarmnode1's own bridge used and kept; swarmnode2's made by the lab on the first free subnet, then removed.
    assert [steps[f"gwbridge-{m}"]["stdout"].strip() for m in ("swarmnode1", "swarmnode2")] == \
        ["docker_gwbridge 10.211.0.0/16", "docker_gwbridge 172.18.0.0/16"]
    assert on(swarm, "swarmnode1", "docker network inspect --format '{{.IPAM.Config}}' docker_gwbridge").stdout \
        .count("10.211.0.0/16") == 1
    on(swarm, "swarmnode1", "docker network rm docker_gwbridge >/dev/null 2>&1; true")


@pytest.mark.parametrize("variant", SWARM_VARIANTS, ids=lambda v: v.id)
def test_each_claims_negative_fails_exactly_it(variant, swarm, monkeypatch, tmp_path):
    fresh(swarm)
    folder = make_course_variant(variant, tmp_path)
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, swarm, str(folder), "--target", f"vagrant:{swarm.root}", *lab_sets(variant.lab),
                     *variant.args, "--report", f"json:{report}")
    data = json.loads(report.read_text())
    got = {c["id"]: c["verdict"] for c in data["claims"]}
    assert code == 1, data
    assert {cid for cid, v in got.items() if v == "fail"} == variant.fails, got
    assert {cid for cid, v in got.items() if v == "error"} == variant.not_judged, got
    assert all(on(swarm, m, "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() == "inactive"
               for m in SWARM)


def test_a_machine_in_another_swarm_is_a_target_error_and_is_left_in_it(swarm, monkeypatch, capsys):
    # (After the lab's run: a swarm left on a kernel without IP_VS keeps a stale ingress network.)
    assert on(swarm, "swarmnode2", "docker swarm init --advertise-addr 192.168.135.102 >/dev/null").ok
    try:
        before = {m: on(swarm, m, STATE).stdout for m in SWARM}
        code = run_check(monkeypatch, swarm, "11", "--target", f"vagrant:{swarm.root}")
        err = capsys.readouterr().err
        assert code == 3, err
        assert "swarmnode2: swarm membership" in err and "not created by check-lab" in err
        assert {m: on(swarm, m, STATE).stdout for m in SWARM} == before  # swarmnode2 still in its swarm
        assert before["swarmnode2"].split()[0] == "active"
    finally:
        on(swarm, "swarmnode2", "docker swarm leave --force >/dev/null")


def test_a_port_the_routing_mesh_needs_already_taken_is_a_target_error(swarm, monkeypatch, capsys):
    """Something of the student's own listens on swarmnode1's port 4000, which the lab's service publishes
    on every node: one line naming the machine and the port, exit 3, nothing changed on any machine, and
    the student's program still running."""
    started = on(swarm, "swarmnode1", "nohup python3 -m http.server 4000 >/dev/null 2>&1 </dev/null & echo $!; "
                                      "for i in $(seq 40); do timeout 1 bash -c '</dev/tcp/127.0.0.1/4000' "
                                      "2>/dev/null && exit 0; sleep 0.25; done; exit 1")
    pid = started.stdout.split()[0]
    assert started.ok, started.stderr
    try:
        before = {m: on(swarm, m, STATE).stdout for m in SWARM}
        code = run_check(monkeypatch, swarm, "11", "--target", f"vagrant:{swarm.root}")
        err = capsys.readouterr().err
        assert code == 3, err
        assert "swarmnode1: port 4000 of the target is in use" in err and "ss -ltnp" in err, err
        assert {m: on(swarm, m, STATE).stdout for m in SWARM} == before
        assert on(swarm, "swarmnode1", f"kill -0 {pid}").ok  # never stopped
    finally:
        on(swarm, "swarmnode1", f"kill {pid}; true")


def test_a_machine_halted_mid_lab_then_the_next_run_recovers_and_passes(swarm, monkeypatch, tmp_path):
    """swarmnode2 goes away once it has joined (its container VM is killed: the SSH connection drops): exit 3,
    one line naming it, and the two machines still there left as they were (the swarm dissolved, the service
    removed). Once it is back (`vagrant up swarmnode2`), the next run makes it leave the dead swarm the
    interrupted run left it in, and the whole lab passes on the three machines (every claim, the join token
    captured from `init`); every machine as before."""
    import sys
    from pathlib import Path

    fresh(swarm)
    before = {m: on(swarm, m, STATE).stdout for m in SWARM}
    check_lab = Path(sys.executable).parent / "check-lab"
    proc = subprocess.Popen([str(check_lab), "11", "--target", f"vagrant:{swarm.root}", "--set", "replicas=6",
                             "--no-color"], cwd=swarm.root, env=swarm.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            state = on(swarm, "swarmnode2", "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip()
            if state == "active":
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[0]
        container = MachineData(swarm.root, "swarmnode2").machine_dir()[0].joinpath("id").read_text().strip()
        subprocess.run(["docker", "kill", container], env=swarm.env, check=True, capture_output=True)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out
    last = out.strip().splitlines()[-1]
    assert "swarmnode2" in last and "lost" in last, out
    assert {m: on(swarm, m, STATE).stdout for m in SWARM[:2]} == {m: before[m] for m in SWARM[:2]}, out

    vagrant(swarm, "up", "swarmnode2", "--provider=docker")
    fresh(swarm)
    # The whole lab on the three machines: it passes, and leaves every machine as it was found.
    report = tmp_path / "r.json"
    # 6 replicas instead of the course's 50: the same claim, a fraction of the time on two cores.
    code = run_check(monkeypatch, swarm, "11", "--target", f"vagrant:{swarm.root}", "--set", "replicas=6",
                     "--report", f"json:{report}")
    data = json.loads(report.read_text())
    assert code == 0, data
    assert any(n.startswith("swarmnode2: removed swarm membership") and "interrupted" in n for n in data["notes"]), \
        data["notes"]
    verdicts = {c["id"]: c["verdict"] for c in data["claims"]}
    ipvs = all(on(swarm, m, "[ -e /proc/net/ip_vs ] || [ -d /proc/sys/net/ipv4/vs ]").ok for m in SWARM)
    assert verdicts.pop("routing-mesh") == ("pass" if ipvs else "n/a")
    assert set(verdicts.values()) == {"pass"} and len(verdicts) == 5
    steps = {s["id"]: s for s in data["steps"]}
    assert steps["join-node1"]["command"].startswith("docker swarm join --token SWMTKN-")
    assert steps["join-node2"]["title"].endswith("(on swarmnode2)")
    assert {m: on(swarm, m, STATE).stdout for m in SWARM} == before
