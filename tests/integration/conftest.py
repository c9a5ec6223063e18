"""Integration fixtures: the real test environment and real Vagrant container VMs.

Every VM lives in a project folder of its own (a copy of the Vagrantfile and the provisioner, plus a
`.lab-env` pointing at the test environment), so the tests never touch a developer's own VM.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import vagrant

from checker.targets.ssh import SSHTransport
from checker.targets.vagrant import VagrantTransport
from provision.machines import MachineData
from tests.testenv import env as testenv

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def lab_env():
    """The offline test environment, started if it is not running (and then stopped at the end)."""
    was_running = testenv.read_pid("dockerd") is not None and testenv.read_pid("registry") is not None
    settings = testenv.start()
    yield settings
    if not was_running:
        testenv.stop()


class VagrantProject:
    """A folder with the course's Vagrantfile, driven through python-vagrant like a student would."""

    def __init__(self, root: Path, lab_env: dict, extra: dict[str, str] | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "Vagrantfile", root / "Vagrantfile")
        (root / "provision").mkdir(exist_ok=True)
        for name in ("guest.py", "boxes.json"):  # what the Vagrantfile reads
            shutil.copy2(REPO / "provision" / name, root / "provision" / name)
        shutil.copytree(REPO / "provision" / "container-vm", root / "provision" / "container-vm", dirs_exist_ok=True)
        settings = {**testenv.lab_settings(lab_env), **(extra or {})}
        (root / ".lab-env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        # (A project's own settings win over LAB_* variables exported in the developer's shell.)
        self.env = {**os.environ, **testenv.VAGRANT_OFFLINE, "DOCKER_HOST": lab_env["docker_host"], **(extra or {})}
        self.log = root / "vagrant.log"
        self.vagrant = vagrant.Vagrant(str(root), env=self.env, out_cm=vagrant.make_file_cm(str(self.log)),
                                       err_cm=vagrant.make_file_cm(str(self.log)))

    def up(self, provider: str = "docker") -> None:
        try:
            self.vagrant.up(provider=provider)
        except Exception:
            print(self.log.read_text()[-4000:])
            raise

    def destroy(self) -> None:
        self.vagrant.destroy()

    def state(self) -> str:
        return self.vagrant.status()[0].state

    def ssh(self, machine: str | None = None) -> SSHTransport:
        """A real SSH session to the VM (or to MACHINE of several), for setting up or looking at test
        situations: the checker's own Vagrant transport, from the SSH settings cached beside Vagrant's
        machine data (no Ruby start-up per call: seconds each on a loaded machine), Vagrant asked when
        nothing valid is cached or the cached settings no longer connect."""
        return VagrantTransport(MachineData(self.root, machine), env=self.env)


@pytest.fixture(scope="session", autouse=True)
def real_vms_early(request, tmp_path_factory):
    """When test_real_vm.py's tests are selected, its three libvirt VMs start coming up (and, on a fresh
    machine, their box is built) at the start of the session, then the labs run on them, all in the
    background while the other tests run: under QEMU/TCG that takes minutes of waiting on the emulated guests
    the suite would otherwise spend in a row. None otherwise."""
    if not any(getattr(item, "module", None) is not None and item.module.__name__.endswith("test_real_vm")
               for item in request.session.items):
        yield None
        return
    from tests.integration.test_real_vm import LibvirtSwarm

    work = LibvirtSwarm(request.getfixturevalue("lab_env"), tmp_path_factory.mktemp("libvirt")).start()
    yield work
    work.close()


@pytest.fixture
def project_factory(lab_env, tmp_path_factory):
    made: list[VagrantProject] = []

    def make(name: str, extra: dict[str, str] | None = None) -> VagrantProject:
        project = VagrantProject(tmp_path_factory.mktemp(name), lab_env, extra)
        made.append(project)
        return project

    yield make
    for project in made:
        try:
            project.destroy()
        except Exception:
            pass


MACHINE_STATE = ("docker ps -a --format 'container {{.Names}} {{.ID}}'; "
                 "docker image ls --format 'image {{.Repository}}:{{.Tag}} {{.ID}}'; "
                 "docker volume ls --format 'volume {{.Name}}'; docker network ls --format 'network {{.Name}} {{.ID}}'")


def machine_state(vm: VagrantProject) -> list[str]:
    """Everything a lab (or a test) may create on a machine: containers, images, volumes and networks."""
    res = sh(vm, MACHINE_STATE, timeout=300)
    assert res.ok, res.stderr
    return sorted(res.stdout.splitlines())


def module_state(vm: VagrantProject) -> list[str]:
    """machine_state, with the default bridge network by name only: dockerd makes it anew, under a new ID, each
    time it starts (the tests that restart the engine leave nothing behind)."""
    return ["network bridge" if line.startswith("network bridge ") else line for line in machine_state(vm)]


class SharedVM:
    """The E1 container VM the modules share, brought up when a module first asks for it."""

    def __init__(self, lab_env: dict, tmp_path_factory):
        self.lab_env, self.tmp_path_factory = lab_env, tmp_path_factory
        self.project: VagrantProject | None = None

    def get(self) -> VagrantProject:
        if self.project is None:
            self.project = VagrantProject(self.tmp_path_factory.mktemp("shared"), self.lab_env)
            self.project.up()
        return self.project

    def discard(self) -> None:
        if self.project is not None:
            project, self.project = self.project, None
            project.destroy()


@pytest.fixture(scope="session")
def _shared_vms(lab_env, tmp_path_factory):
    vms = SharedVM(lab_env, tmp_path_factory)
    yield vms
    vms.discard()


@pytest.fixture(scope="module")
def shared_vm(_shared_vms):
    """One E1 container VM for the session's modules (a `vagrant up` each cost the suite minutes): each test
    leaves it as it found it, and so does each module, checked here: a module that leaves containers, images,
    volumes or networks behind errors at its end, and the next module gets a new VM."""
    project = _shared_vms.get()
    before = module_state(project)
    yield project
    try:
        after = module_state(project)
    except Exception as exc:  # noqa: BLE001 - the VM no longer answers: the next module gets a new one
        _shared_vms.discard()
        pytest.fail(f"the shared VM no longer answers after this module: {exc}")
    if after != before:
        _shared_vms.discard()
        pytest.fail("this module left the shared VM changed (the next module gets a new one): "
                    f"gone {sorted(set(before) - set(after))}, new {sorted(set(after) - set(before))}")


def sh(vm: VagrantProject, command: str, timeout: float = 120, machine: str | None = None):
    """One shell command on the VM (or MACHINE of the project's several) over an SSH session of its own
    (setting up or looking at a test situation)."""
    ssh = vm.ssh(machine)
    try:
        return ssh.run(command, timeout=timeout)
    finally:
        ssh.close()


def on(project: VagrantProject, machine: str, command: str, timeout: float = 120):
    """sh() on one machine of a project of several (the swarm machines)."""
    return sh(project, command, timeout=timeout, machine=machine)


def run_check(monkeypatch, project: VagrantProject, *args: str) -> int:
    """`check-lab ARGS` in the project's folder, in-process, as a student would type it there."""
    from checker.cli import main

    monkeypatch.chdir(project.root)
    for key, value in project.env.items():
        if key.startswith(("DOCKER_", "VAGRANT_")):
            monkeypatch.setenv(key, value)
    return main(list(args))
