"""The table of targets: where a lab runs, chosen by the scheme of `--target SPEC` (as in testinfra's
BACKENDS). The same table reads the lines of a targets file and writes the help text.

A new kind of target is one module here with `open_target(spec, options) -> Transport` (and, if it can,
`parse(spec)` that validates without connecting) plus one line in BACKENDS. Modules are imported only
when a target of theirs is opened: `check-lab --help` imports none of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from checker.errors import UsageError


@dataclass(frozen=True)
class TargetOptions:
    spec: str | None = None
    identity: str | None = None
    known_hosts: str | None = None
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class Backend:
    scheme: str
    forms: str  # how a spec of this kind is written
    what: str  # one line for the help text
    module: str

    def matches(self, spec: str) -> bool:
        return spec == self.scheme or spec.startswith(self.scheme + ":")


BACKENDS: dict[str, Backend] = {
    "vagrant": Backend("vagrant", "vagrant[:NAME] | vagrant:PATH[#NAME]",
                       "the Vagrant machine of this folder (the default), or of the folder PATH", "checker.targets.vagrant"),
    "ssh": Backend("ssh", "ssh://USER@HOST[:PORT]", "any SSH server (host key checked against known_hosts)",
                   "checker.targets.ssh"),
    "docker": Backend("docker", "docker://[USER@]CONTAINER",
                      "a running container with a Docker CLI, through docker exec", "checker.targets.docker"),
    "local": Backend("local", "local", "this machine", "checker.targets.local"),
}
DEFAULT = "vagrant"


def backend_for(spec: str) -> Backend:
    for backend in BACKENDS.values():
        if backend.matches(spec):
            return backend
    raise UsageError(f"unknown target {spec!r}: use {forms_text(' or ')}")


def forms_text(sep: str = ", ") -> str:
    return sep.join(b.forms for b in BACKENDS.values())


def help_text() -> str:
    """For `--target`'s help: every kind of target, from the table."""
    return "; ".join(f"{b.forms}: {b.what}" for b in BACKENDS.values())


def validate(spec: str) -> Backend:
    """The backend of `spec`, after checking the spec's form (nothing is contacted)."""
    backend = backend_for(spec)
    module = importlib.import_module(backend.module)
    if hasattr(module, "parse"):
        module.parse(spec)
    return backend


def open_target(opts: TargetOptions):
    """The Transport for `--target` (default: the Vagrant machine of this folder)."""
    spec = opts.spec or DEFAULT
    backend = backend_for(spec)
    return importlib.import_module(backend.module).open_target(spec, opts)


def open_quickly(opts: TargetOptions):
    """The Transport, if it can be had without asking anything slow (e.g. Vagrant, when the machine's SSH
    settings are cached); else None, and open_target later. Lets a run connect while the lab loads."""
    spec = opts.spec or DEFAULT
    module = importlib.import_module(backend_for(spec).module)
    quick = getattr(module, "open_quickly", None)
    return quick(spec, opts) if quick is not None else module.open_target(spec, opts)


def machine_set(spec: str) -> dict[str, str] | None:
    """`NAME=TARGET,NAME=TARGET,…` (one target per machine of a lab over several), checked in form; None for
    a spec of one target."""
    if "=" not in spec:
        return None
    specs: dict[str, str] = {}
    for part in spec.split(","):
        name, sep, sub = part.partition("=")
        if not sep or not name.strip() or not sub.strip():
            raise UsageError(f"--target {spec!r}: each machine is NAME=TARGET, separated by commas")
        validate(sub.strip())
        specs[name.strip()] = sub.strip()
    return specs


def open_machines(opts: TargetOptions, machines: tuple[str, ...]) -> dict:
    """One Transport per machine of a lab that spans several (the course's swarm), in the lab's order:
    `--target vagrant` or `vagrant:PATH` (the Vagrant environment's machines of those names, the default), or
    `--target NAME=SPEC,NAME=SPEC,…` (any target for each machine, e.g. swarmmanager=ssh://vagrant@10.0.0.5)."""
    spec = opts.spec or DEFAULT
    listed = ", ".join(machines)
    specs = machine_set(spec)
    if specs is not None:
        if set(specs) != set(machines):
            raise UsageError(f"--target names {', '.join(specs) or 'no machine'}; the lab runs on {listed}: "
                             f"give NAME=TARGET for each")
        ordered = [(name, specs[name]) for name in machines]
    else:
        backend = backend_for(spec)
        if backend.scheme != "vagrant":
            raise UsageError(f"the lab runs on {len(machines)} machines ({listed}): give the Vagrant folder "
                             f"(--target vagrant or vagrant:PATH), or --target NAME=TARGET,… for each")
        module = importlib.import_module(backend.module)
        if module.parse(spec)[1] is not None:
            raise UsageError(f"--target {spec}: the lab runs on {listed}, not on one machine; give the Vagrant "
                             f"folder (vagrant or vagrant:PATH) and check-lab takes those machines")
        root = module._root(spec)[0]  # the folder with the Vagrantfile (absolute)
        ordered = [(m, f"vagrant:{root}#{m}") for m in machines]
    from concurrent.futures import ThreadPoolExecutor

    # At once: a Vagrant machine whose SSH settings are not cached yet asks Vagrant (Ruby, seconds each).
    with ThreadPoolExecutor(max_workers=len(ordered)) as pool:
        futures = {name: pool.submit(open_target, TargetOptions(sub, opts.identity, opts.known_hosts,
                                                                opts.accept_new_host_key, opts.connect_timeout))
                   for name, sub in ordered}
    opened = {name: f.result() for name, f in futures.items() if f.exception() is None}
    failed = next((f.exception() for f in futures.values() if f.exception() is not None), None)
    if failed is not None:
        for transport in opened.values():
            transport.close()
        raise failed
    return opened

