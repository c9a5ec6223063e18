"""Real VMs: Vagrant's libvirt provider under QEMU/TCG (no usable KVM here), the offline Debian bookworm box
(docker.io 20.10: engine E1). The course's three swarm machines come up together (`vagrant up swarmmanager
swarmnode1 swarmnode2 --provider=libvirt`), provisioned as a student's would be. Their kernel is Debian's own,
with IP_VS and ESP, which this host's kernel (the container VMs') lacks: lab 11 is judged whole here, the routing
mesh included, and lab 12 with the encrypted overlay's reach, on the machines lab 11 has just left. Lab 15 runs on
swarmmanager, a VM with its own kernel and cgroup v2 (the container VMs have the host's cgroup v1).

Under TCG all of it takes minutes, mostly waiting on the emulated guests: conftest's `real_vms_early` starts it
in a thread of its own at the session's start (boot, then the labs one after the other with `check-lab` as
a student types it, then the VMs destroyed), while the other tests run; the tests here judge what it found."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import VagrantProject, on
from tests.integration.test_swarm import STATE_AND_NETWORKS
from tests.testenv import env as testenv

pytestmark = pytest.mark.integration

SWARM = ("swarmmanager", "swarmnode1", "swarmnode2")
SUBNET = testenv.LIBVIRT_SWARM_SUBNET
# Under software emulation Docker is 5-10 times slower: every step gets three times its timeout.
SLOW = ("--timeout-factor", "3")
# The labs run on the VMs, in this order, each with its machine (None: the three) and its arguments: lab 11
# (6 replicas instead of 50: the same claim, minutes less under TCG) and lab 12, on the three machines (the
# manager's address on this subnet), then lab 15 on swarmmanager alone. Lab 12 after lab 11 on the same engines:
# lab 11's swarm made and removed a docker_gwbridge on each worker, so the next subnet those engines hand out
# is 172.19.0.0/16, lab 12's own (its gwbridge steps keep the workers' bridge off it).
LABS = {"11": (None, ("--set", f"manager_address={SUBNET}.100", "--set", "replicas=6")),
        "12": (None, ("--set", f"manager_address={SUBNET}.100")),
        "15": ("swarmmanager", ())}


@dataclass
class LabRun:
    code: int
    report: dict
    output: str
    before: dict
    after: dict
    seconds: float


def state(project, machine: str) -> str:
    """What a swarm lab may leave on a machine: swarm membership, containers, services, networks, run records."""
    res = on(project, machine, STATE_AND_NETWORKS, timeout=300)
    assert res.ok, res.stderr[-2000:]
    return res.stdout


class LibvirtSwarm:
    """The three VMs and the labs run on them, in a thread of their own; the VMs are destroyed as soon as
    the last lab is done (the other tests get the machine's cores back)."""

    def __init__(self, lab_env: dict, root: Path):
        self.lab_env, self.root = lab_env, root
        self.project: VagrantProject | None = None
        self.error: str | None = None
        self.up_seconds, self.up_output, self.hosts = 0.0, "", ""
        self.runs: dict[str, LabRun | str] = {}  # a lab's run, or why it did not run
        self.booted = threading.Event()
        self.done = {lab: threading.Event() for lab in LABS}
        self.destroyed = False
        self.thread = threading.Thread(target=self._work, name="libvirt-swarm", daemon=True)

    def start(self) -> "LibvirtSwarm":
        self.thread.start()
        return self

    def _work(self) -> None:
        try:
            self._up()
        finally:
            self.booted.set()
        try:
            for lab, (machine, args) in LABS.items():
                try:
                    self.runs[lab] = (self._run(lab, machine, args) if self.error is None
                                      else f"not run: {self.error}")
                except BaseException as exc:  # (reported by the lab's test)
                    self.runs[lab] = f"{type(exc).__name__}: {exc}"
                finally:
                    self.done[lab].set()
        finally:
            self.destroy()

    def _up(self) -> None:
        try:
            testenv.ensure_libvirt()
            testenv.ensure_box("bookworm")
            project = VagrantProject(self.root, self.lab_env, testenv.libvirt_swarm_settings("bookworm"))
            self.project = project
            started = time.monotonic()
            done = subprocess.run(["vagrant", "up", *SWARM, "--provider=libvirt"], cwd=project.root,
                                  env=project.env, capture_output=True, text=True, timeout=2400)
            self.up_seconds, self.up_output = time.monotonic() - started, done.stdout
            if done.returncode != 0:
                self.error = f"vagrant up failed: {done.stdout[-4000:]}{done.stderr[-3000:]}"
                return
            self.hosts = on(project, "swarmnode1", "getent hosts swarmmanager swarmnode2; uname -r; "
                                                   "stat -fc %T /sys/fs/cgroup").stdout
        except BaseException as exc:  # (reported by the tests, which need the VMs)
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self, lab: str, machine: str | None, args: tuple[str, ...]) -> LabRun:
        """`check-lab LAB --target vagrant:ROOT[#MACHINE] …` in the project's folder, as a student types it."""
        project = self.project
        machines = (machine,) if machine else SWARM
        target = f"vagrant:{project.root}" + (f"#{machine}" if machine else "")
        report = project.root / f"report-{lab}.json"
        before = {m: state(project, m) for m in machines}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "checker", lab, "--target", target, *args, *SLOW,
                               "--report", f"json:{report}", "--no-color"], cwd=project.root, env=project.env,
                              capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - started
        after = {m: state(project, m) for m in machines}
        data = json.loads(report.read_text()) if report.exists() else {}
        return LabRun(done.returncode, data, done.stdout[-6000:] + done.stderr[-3000:], before, after, seconds)

    def boot(self) -> "LibvirtSwarm":
        assert self.booted.wait(timeout=3600), "the libvirt VMs did not come up within an hour"
        assert self.error is None, self.error
        return self

    def lab(self, lab: str) -> LabRun:
        assert self.done[lab].wait(timeout=3600), f"lab {lab} on the libvirt VMs did not end within an hour"
        run = self.runs[lab]
        assert isinstance(run, LabRun), run
        print(f"lab {lab} on the libvirt VMs: exit {run.code} in {run.seconds:.0f}s (beside the other tests)")
        return run

    def destroy(self) -> None:
        if self.project is not None and not self.destroyed:
            self.destroyed = True
            subprocess.run(["vagrant", "destroy", "-f", *SWARM], cwd=self.project.root, env=self.project.env,
                           capture_output=True, timeout=900)

    def close(self) -> None:
        self.thread.join(timeout=3600)
        self.destroy()


@pytest.fixture(scope="module")
def libvirt_swarm(real_vms_early, lab_env, tmp_path_factory):
    work = real_vms_early or LibvirtSwarm(lab_env, tmp_path_factory.mktemp("libvirt")).start()
    try:
        yield work
    finally:
        work.close()


def test_three_vms_up_and_provisioned_together(libvirt_swarm):
    swarm = libvirt_swarm.boot()
    out = swarm.up_output
    # The box has curl, as Ubuntu's have (the provisioner would install it where a box lacks it).
    assert out.count("[unchanged] tools-installed: curl installed") == 3, out[-3000:]
    assert out.count("engine-verified: Docker 20.10") == 3
    assert f"{SUBNET}.100" in swarm.hosts and f"{SUBNET}.102" in swarm.hosts and "cgroup2fs" in swarm.hosts
    print(f"three libvirt VMs up and provisioned in {swarm.up_seconds:.0f}s (beside the other tests)")


def test_lab_11_whole_on_kernels_with_ip_vs(libvirt_swarm):
    run = libvirt_swarm.lab("11")
    assert run.code == 0, run.output
    verdicts = {c["id"]: c["verdict"] for c in run.report["claims"]}
    assert set(verdicts.values()) == {"pass"} and "routing-mesh" in verdicts  # judged, not n/a
    assert [s["stdout"].strip() for s in run.report["steps"] if s["id"].startswith("ipvs-")] == ["ip_vs"] * 3
    assert run.after == run.before


def test_lab_12_whole_on_kernels_with_esp(libvirt_swarm):
    run = libvirt_swarm.lab("12")
    assert run.code == 0, run.output
    verdicts = {c["id"]: c["verdict"] for c in run.report["claims"]}
    assert set(verdicts.values()) == {"pass"} and "reaches-across-nodes" in verdicts  # the encrypted reach judged
    assert "none" not in [s["stdout"].strip() for s in run.report["steps"] if s["id"].startswith("esp-")]
    # Each worker's bridge to the swarm on a subnet apart from the lab's (lab 11 had made and removed one).
    bridges = [s["stdout"].strip() for s in run.report["steps"] if s["id"].startswith("gwbridge-")]
    assert len(bridges) == 2 and all(b.startswith("docker_gwbridge 172.") and " 172.19." not in b
                                     for b in bridges), bridges
    assert run.after == run.before


def test_lab_15_on_a_real_vm_with_cgroup_v2(libvirt_swarm):
    """The course's memory limits on a VM with its own kernel and cgroup v2: the JVM's maximum memory follows
    the machine, then --memory; the course's cgroup v1 sentence is a statement that does not hold here."""
    run = libvirt_swarm.lab("15")
    assert run.code == 0, run.output
    data = run.report
    assert data["target"].startswith("vagrant:swarmmanager (libvirt,")
    assert data["engine"]["cgroup_version"] == "2"
    assert "(containerized)" not in data["engine"]["operating_system"]  # a VM with its own kernel
    assert {c["id"]: c["verdict"] for c in data["claims"]} == {"sees-machine-memory": "pass",
                                                               "follows-memory-limit": "pass"}
    assert {s["id"]: s["holds"] for s in data["lab_vs_engine"]}["cgroup-v1"] is False
    assert run.after == run.before
