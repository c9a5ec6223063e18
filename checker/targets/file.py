"""A targets file (`--targets FILE`): a class's machines.

FILE is either an OpenSSH config file (each `Host` without wildcards is a target, with its HostName, Port,
User, IdentityFile and host-key settings), or a list, one target per line, in any form of the table of
targets (checker/targets):

    # label = target [identity=KEYFILE]
    alice = ssh://vagrant@10.0.0.11:22 identity=~/.ssh/class_key
    bob   = vagrant:/home/teacher/vms/bob          # the Vagrant machine of that folder (vagrant:PATH#NAME)
    carol = docker://carol-vm                      # a container, through docker exec
    ssh://vagrant@10.0.0.13:2222                   # the label is the target itself

For a lab over several machines (labs 11 and 12: the course's swarm) a target is a set of machines, as
`--target` takes it: a Vagrant folder (`vagrant:PATH`, its machines of the lab's names), or, after a label,
one target per machine:

    dave = swarmmanager=ssh://vagrant@10.0.1.10,swarmnode1=ssh://vagrant@10.0.1.11,swarmnode2=ssh://vagrant@10.0.1.12
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from checker.errors import UsageError
from checker.targets import TargetOptions, forms_text, machine_set, open_machines, open_target, validate


@dataclass
class TargetEntry:
    label: str
    spec: str
    open: Callable[[], object]  # -> a Transport
    # the lab's machines -> a Transport each (a lab over several machines); None: this entry is one machine
    open_machines: Callable[[tuple[str, ...]], dict] | None = None


def load_targets(path: Path, opts: TargetOptions) -> list[TargetEntry]:
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise UsageError(f"--targets {path}: {exc.strerror}") from None
    if re.search(r"^\s*Host\s+\S", text, re.M | re.I):
        entries = _from_ssh_config(text, opts)
    else:
        entries = _from_list(text, opts, path)
    if not entries:
        raise UsageError(f"--targets {path}: no targets in it")
    labels = [e.label for e in entries]
    duplicate = next((label for label in labels if labels.count(label) > 1), None)
    if duplicate:
        raise UsageError(f"--targets {path}: the label {duplicate!r} is used twice")
    return entries


def _from_list(text: str, opts: TargetOptions, path: Path) -> list[TargetEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()  # a comment starts a line or follows a space
        if not line:
            continue
        labelled = re.match(r"^([A-Za-z0-9_.@-]+)\s*=\s*(.*)$", line)
        label, line = (labelled.group(1), labelled.group(2)) if labelled else ("", line)
        words = shlex.split(line)
        if not words:
            raise UsageError(f"--targets {path}:{number}: no target after the label")
        spec, extras = words[0], words[1:]
        bad = [w for w in extras if not w.startswith("identity=")]
        if bad:
            raise UsageError(f"--targets {path}:{number}: unexpected {bad[0]!r} (only identity=KEYFILE)")
        try:
            if labelled and "=" in spec and "=" not in spec.split(",")[0]:  # NAME=TARGET,… read as LABEL = …
                raise UsageError(f"a set of machines needs a label first (LABEL = {line})")
            if machine_set(spec) is None:
                validate(spec)
        except UsageError as exc:
            if "unknown target" in exc.message:
                raise UsageError(f"--targets {path}:{number}: {spec!r} is not a target ({forms_text(', ')})") \
                    from None
            raise UsageError(f"--targets {path}:{number}: {exc.message}") from None
        identity = next((w.split("=", 1)[1] for w in extras), opts.identity)
        target_opts = TargetOptions(spec, identity, opts.known_hosts, opts.accept_new_host_key, opts.connect_timeout)
        entries.append(TargetEntry(label or spec, spec, lambda o=target_opts: open_target(o),
                                   lambda names, o=target_opts: open_machines(o, names)))
    return entries


def _from_ssh_config(text: str, opts: TargetOptions) -> list[TargetEntry]:
    from checker.targets.ssh import SSHSettings, SSHTransport, import_paramiko

    config = import_paramiko().SSHConfig.from_text(text)
    entries = []
    for host in sorted(h for h in config.get_hostnames() if not any(c in h for c in "*?!")):
        entry = config.lookup(host)
        strict = str(entry.get("stricthostkeychecking", "yes")).lower()
        known = entry.get("userknownhostsfile")
        policy = "vagrant" if strict == "no" else "accept-new" if (strict == "accept-new" or
                                                                    opts.accept_new_host_key) else "strict"
        settings = SSHSettings(
            host=entry.get("hostname", host), port=int(entry.get("port", 22)), user=entry.get("user", "vagrant"),
            key_files=tuple(entry.get("identityfile", [])) or ((opts.identity,) if opts.identity else ()),
            host_keys=policy, known_hosts=(known.split()[0] if known and policy != "vagrant" else opts.known_hosts),
        )
        entries.append(TargetEntry(host, settings.describe(),
                                   lambda s=settings: SSHTransport(s, connect_timeout=opts.connect_timeout)))
    return entries
