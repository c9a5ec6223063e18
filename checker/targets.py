"""Turn `--target` into a Transport.

    (none) / vagrant / vagrant:NAME   the Vagrant machine of the Vagrantfile in this folder or above
    ssh://USER@HOST[:PORT]            any SSH server (host key checked against known_hosts)
    local                             this machine
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from checker.errors import TargetError, UsageError
from checker.transport import LocalTransport, SSHSettings, SSHTransport, Transport

READY_STATES = {"running"}


@dataclass(frozen=True)
class TargetOptions:
    spec: str | None = None
    identity: str | None = None
    known_hosts: str | None = None
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0


def open_target(opts: TargetOptions) -> Transport:
    spec = opts.spec or "vagrant"
    if spec == "local":
        return LocalTransport()
    if spec.startswith("ssh://"):
        return SSHTransport(_ssh_settings(spec, opts), connect_timeout=opts.connect_timeout)
    if spec == "vagrant" or spec.startswith("vagrant:"):
        # vagrant:NAME (a machine of the Vagrantfile here), or vagrant:PATH[#NAME] (the folder of a Vagrantfile)
        rest = spec.partition(":")[2]
        path, _, name = rest.partition("#") if ("/" in rest or rest.startswith(".")) else ("", "", rest)
        return _vagrant_target(name or None, opts, Path(path).expanduser() if path else None)
    raise UsageError(f"unknown target {spec!r}: use ssh://USER@HOST:PORT, local, or vagrant[:NAME]")


def _ssh_settings(spec: str, opts: TargetOptions) -> SSHSettings:
    parts = urlsplit(spec)
    try:
        port = parts.port or 22
    except ValueError:
        raise UsageError(f"bad port in target {spec!r}") from None
    if not parts.hostname:
        raise UsageError(f"no host in target {spec!r}: use ssh://USER@HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"unexpected path or query in target {spec!r}: use ssh://USER@HOST:PORT")
    if parts.password:
        raise UsageError("passwords do not belong in the target; use --identity KEYFILE")
    if opts.identity and not Path(opts.identity).expanduser().is_file():
        raise UsageError(f"identity file {opts.identity} does not exist")
    return SSHSettings(
        host=parts.hostname, port=port, user=parts.username or "vagrant",
        key_files=(opts.identity,) if opts.identity else (),
        host_keys="accept-new" if opts.accept_new_host_key else "strict",
        known_hosts=opts.known_hosts,
    )


def _vagrant_target(name: str | None, opts: TargetOptions, folder: Path | None = None) -> Transport:
    from provision.vagrant import Machine, find_root

    if folder is not None:
        if not (folder / "Vagrantfile").is_file():
            raise TargetError(f"no Vagrantfile in {folder}")
        root = folder.resolve()
    else:
        root = find_root()
    if root is None:
        raise TargetError("no Vagrantfile in this folder or above",
                          hint="run check-lab in the course folder, or give --target ssh://USER@HOST:PORT")
    return VagrantTransport(Machine(root, name), connect_timeout=opts.connect_timeout)


class VagrantTransport(SSHTransport):
    """SSH to a Vagrant machine. Its SSH settings come from a cache beside Vagrant's own machine data
    when they are known (no Ruby start-up); if that connection fails, or nothing is cached, Vagrant is
    asked (`vagrant status`, `vagrant ssh-config`) and the cache refreshed."""

    def __init__(self, machine, connect_timeout: float = 10.0):
        self.machine = machine
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
        from provision.vagrant import VagrantError

        try:
            state, provider = self.machine.state()
            if state not in READY_STATES:
                what = "has not been created" if state == "not_created" else f"is {state.replace('_', ' ')}"
                raise TargetError(f"the {self.machine.label} {what}", hint="start it with `vagrant up`")
            return self.machine.ssh_config(), provider
        except VagrantError as exc:
            raise TargetError(str(exc)) from None

    def _connect(self):
        try:
            return super()._connect()
        except TargetError:
            if not self.from_cache:
                raise
        # The cached settings did not work (a halted or changed machine): ask Vagrant, then try once more.
        self.machine.forget_ssh_cache()
        self.from_cache = False
        cfg, provider = self._ask_vagrant()
        self.settings, self.attempts = self._settings(cfg), 3
        self._describe(provider)
        return super()._connect()
