"""`--target vagrant[:NAME]` or `vagrant:PATH[#NAME]`: a machine of a Vagrant environment, over SSH.

Its SSH settings come from the cache beside Vagrant's own machine data when they are known (no Ruby
start-up; provision/machines.py); if that connection fails, or nothing is cached, Vagrant is asked
(`vagrant status`, `vagrant ssh-config`, through provision/vagrant.py) and the cache refreshed. Vagrant's
machines get throwaway host keys, which are not checked (its own convention)."""

from __future__ import annotations

from pathlib import Path

from checker.errors import TargetError
from checker.targets.ssh import SSHSettings, SSHTransport
from provision.machines import MachineData, find_root

READY_STATES = {"running"}


def parse(spec: str) -> tuple[Path | None, str | None]:
    """vagrant, vagrant:NAME (a machine of the Vagrantfile here), vagrant:PATH[#NAME] (the folder of one)."""
    rest = spec.partition(":")[2]
    if "/" in rest or rest.startswith(".") or rest.startswith("~"):
        path, _, name = rest.partition("#")
        return Path(path).expanduser(), name or None
    return None, rest or None


def _root(spec: str) -> tuple[Path, str | None]:
    folder, name = parse(spec)
    if folder is not None:
        if not (folder / "Vagrantfile").is_file():
            raise TargetError(f"no Vagrantfile in {folder}")
        root = folder.resolve()
    else:
        root = find_root()
    if root is None:
        raise TargetError("no Vagrantfile in this folder or above",
                          hint="run check-lab in the course folder, or give --target ssh://USER@HOST:PORT")
    return root, name


def open_target(spec: str, options) -> "VagrantTransport":
    root, name = _root(spec)
    return VagrantTransport(MachineData(root, name), connect_timeout=options.connect_timeout)


def open_quickly(spec: str, options) -> "VagrantTransport | None":
    """Only from cached SSH settings (no Vagrant, no Ruby); None when Vagrant must be asked."""
    try:
        root, name = _root(spec)
    except TargetError:
        return None
    machine = MachineData(root, name)
    if machine.cached_ssh_config() is None:
        return None
    return VagrantTransport(machine, connect_timeout=options.connect_timeout)


class VagrantTransport(SSHTransport):
    def __init__(self, machine: MachineData, connect_timeout: float = 10.0, env: dict | None = None):
        self.machine = machine
        self.env = env
        cached = machine.cached_ssh_config()
        self.from_cache = cached is not None
        if cached is not None:
            cfg, provider = cached
        else:
            cfg, provider = self._ask_vagrant()
        super().__init__(self._settings(cfg), connect_timeout=connect_timeout,
                         attempts=1 if self.from_cache else 3)
        self._describe(provider)

    @staticmethod
    def _settings(cfg) -> SSHSettings:
        return SSHSettings(host=cfg.host, port=cfg.port, user=cfg.user, key_files=cfg.key_files, host_keys="vagrant")

    def _describe(self, provider: str | None) -> None:
        self.description = f"vagrant:{self.machine.name or 'default'} ({provider}, {self.settings.describe()})"

    def _ask_vagrant(self):
        from provision.vagrant import Machine, VagrantError

        machine = Machine(self.machine.root, self.machine.name, env=self.env)
        try:
            state, provider = machine.state()
            if state not in READY_STATES:
                what = "has not been created" if state == "not_created" else f"is {state.replace('_', ' ')}"
                raise TargetError(f"the {machine.label} {what}", hint="start it with `vagrant up`")
            return machine.ssh_config(), provider
        except VagrantError as exc:
            raise TargetError(str(exc)) from None

    def connect(self):
        try:
            return super().connect()
        except TargetError:
            if not self.from_cache:
                raise
        # The cached settings did not work (a halted or changed machine): ask Vagrant, then try once more.
        self.machine.forget_ssh_cache()
        self.from_cache = False
        cfg, provider = self._ask_vagrant()
        self.settings, self.attempts = self._settings(cfg), 3
        self._describe(provider)
        return super().connect()
