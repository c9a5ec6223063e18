"""The Vagrant boundary: python-vagrant, with the timeouts and return-code checks it lacks.

python-vagrant runs `vagrant` without a timeout and logs, rather than reports, what Vagrant said.
`Machine` wraps it: every call has a timeout, runs with `--machine-readable`, and a failure becomes a
`VagrantError` with a one-line reason drawn from Vagrant's own error (provider missing, box missing,
boot timeout, a provisioning step that failed, ...). It also keeps the machine's SSH settings in a
cache beside Vagrant's machine data (provision/machines.py), so that check-lab need not start Ruby.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable

import vagrant

from provision.machines import MachineData, SSHConfig

TIMEOUTS = {"status": 120.0, "ssh-config": 120.0, "up": 1800.0, "provision": 1800.0, "halt": 300.0,
            "destroy": 600.0, "box": 120.0, "plugin": 60.0}


class VagrantError(Exception):
    """A Vagrant call failed; the message is one line, for the user. `kind` says what failed:
    missing (no vagrant), provider, box, network (an address the provider refuses), boot-timeout,
    provision-step, timeout, other."""

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        self.kind = kind


# ------------------------------------------------------------------------------------------------ output


def parse_machine_readable(text: str) -> list[tuple[str, str, list[str]]]:
    """`ts,target,type,data...` lines -> (target, type, data fields), with Vagrant's escapes undone."""
    rows = []
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        data = [p.replace("%!(VAGRANT_COMMA)", ",").replace("\\n", "\n").replace("\\r", "") for p in parts[3:]]
        rows.append((parts[1], parts[2], data))
    return rows


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


FAILED_STEP = re.compile(r"\[\s*failed\]\s+([\w-]+):\s*(.*)")


def explain(command: str, output: str, stderr: str = "") -> tuple[str, str]:
    """(kind, one-line reason) for a failed `vagrant COMMAND`, from its machine-readable output."""
    rows = parse_machine_readable(output)
    error_class, message = "", ""
    for _target, kind, data in rows:
        if kind == "error-exit" and len(data) >= 2:
            error_class, message = data[0], ",".join(data[1:])
    texts = "\n".join(",".join(d) for _t, kind, d in rows if kind == "ui") + "\n" + stderr
    failed = FAILED_STEP.findall(texts)
    if failed:
        step, why = failed[-1]
        return "provision-step", f"provisioning step {step} failed: {_one_line(why)}"
    if error_class.endswith(("ProviderNotUsable", "ProviderNotFound", "ProviderNotFoundSuggestion")):
        provider = re.search(r"provider '([^']+)'", message)
        name = provider.group(1) if provider else "requested"
        reason = message.split("reason is shown below:", 1)[-1] if "reason is shown below" in message else message
        return "provider", f"the {name} provider is not available here: {_one_line(reason, 200)}"
    if error_class.endswith("LibvirtConnectionError") or message.startswith("Error while connecting to Libvirt"):
        uri = re.search(r"libvirt URI (\S+?):?(\s|$)", message)
        return "provider", (f"the libvirt provider is not available here: libvirtd does not answer at "
                            f"{uri.group(1) if uri else 'its URI'} (start libvirtd, or pick another provider): "
                            f"{_one_line(message.splitlines()[-1], 160)}")
    if ("Box" in error_class or error_class.endswith("DownloaderError")
            or ("box" in message.lower() and "could not be found" in message.lower())):
        lines = [ln for ln in message.splitlines() if ln.strip()]
        return "box", f"the box is not installed and could not be fetched: {_one_line(lines[-1] if lines else message, 200)}"
    if error_class.endswith("VMBootTimeout") or "Timed out while waiting for the machine to boot" in message:
        return "boot-timeout", "the machine did not boot in time (no SSH within config.vm.boot_timeout, LAB_BOOT_TIMEOUT)"
    if message:
        return "other", _one_line(message)
    lines = [ln for ln in (stderr or output).splitlines() if ln.strip()]
    return "other", _one_line(lines[-1]) if lines else f"vagrant {command} failed"


# ------------------------------------------------------------------------------------------------ runner


class _TimedVagrant(vagrant.Vagrant):
    """python-vagrant with a timeout on each command, machine-readable output, and errors explained."""

    def __init__(self, root: Path, env: dict | None = None):
        super().__init__(root=str(root), env=env)
        self.on_line: Callable[[str], None] | None = None

    def _exec(self, args) -> str:
        try:
            command = self._make_vagrant_command(args) + ["--machine-readable"]
        except RuntimeError:  # python-vagrant found no executable
            raise VagrantError("vagrant is not installed (https://developer.hashicorp.com/vagrant)", "missing") from None
        verb = next((a for a in args if a), "")
        timeout = TIMEOUTS.get(verb, 600.0)
        try:
            proc = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace")
        except FileNotFoundError:
            raise VagrantError("vagrant is not installed (https://developer.hashicorp.com/vagrant)", "missing") from None
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        err: list[str] = []
        try:
            open_streams = 2
            while open_streams:
                left = deadline - time.monotonic()
                if left <= 0:
                    proc.kill()
                    proc.wait()
                    raise VagrantError(f"`vagrant {verb}` did not finish within {timeout:.0f}s", "timeout")
                for key, _ in sel.select(timeout=min(left, 1.0)):
                    line = key.fileobj.readline()
                    if not line:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                        continue
                    if key.fileobj is proc.stdout:
                        lines.append(line)
                        if self.on_line:
                            self.on_line(line)
                    else:
                        err.append(line)
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        finally:
            sel.close()
        output = "".join(lines)
        if proc.returncode != 0 or any(kind == "error-exit" for _t, kind, _d in parse_machine_readable(output)):
            kind, reason = explain(verb, output, "".join(err))
            raise VagrantError(f"vagrant {verb}: {reason}", kind)
        return output

    # python-vagrant funnels every command through these two.
    def _run_vagrant_command(self, args):
        return self._exec(args)

    def _call_vagrant_command(self, args):
        self._exec(args)


class Machine(MachineData):
    """One machine of a Vagrant environment, driven through python-vagrant."""

    def __init__(self, root: Path, name: str | None = None, env: dict | None = None):
        super().__init__(root, name)
        self._vagrant = _TimedVagrant(self.root, env={**os.environ, **(env or {})})

    # -- queries

    def state(self) -> tuple[str, str | None]:
        """(state, provider), e.g. ('running', 'docker') or ('not_created', 'docker')."""
        output = self._vagrant._exec(["status", self.name])
        state, provider = None, None
        rows = parse_machine_readable(output)
        # Without a name, the environment's first machine (the primary: `default`, the course's docker-vm).
        wanted = self.name or next((target for target, _kind, _data in rows if target), None)
        for target, kind, data in rows:
            if wanted and target != wanted:
                continue
            if kind == "state" and data:
                state = data[0]
            elif kind == "provider-name" and data:
                provider = data[0]
        if state is None:
            raise VagrantError(f"`vagrant status` reported no machine in {self.root}")
        return state, provider

    def ssh_config(self) -> SSHConfig:
        """The SSH settings of a running machine, straight from `vagrant ssh-config` (and cached)."""
        import sys

        sys.modules.setdefault("invoke", None)  # paramiko's `Match exec` support, never needed here
        import paramiko

        # Without a name: Vagrant's `default` (the course's docker-vm; in an environment of several machines
        # Vagrant wants one named).
        output = self._vagrant._exec(["ssh-config", self.name or "default"])
        text = output
        rows = parse_machine_readable(output)
        if rows:  # machine-readable mode prints the config inside `ssh-config` rows
            text = "\n".join(",".join(d) for _t, kind, d in rows if kind == "ssh-config") or output
        if not text.strip():
            raise VagrantError(f"`vagrant ssh-config` printed nothing for the {self.label}")
        config = paramiko.SSHConfig.from_text(text)
        hosts = sorted(config.get_hostnames() - {"*"})
        entry = config.lookup(hosts[0] if hosts else "default")
        if "hostname" not in entry:
            raise VagrantError(f"`vagrant ssh-config` gave no HostName for the {self.label}")
        cfg = SSHConfig(entry["hostname"], int(entry.get("port", 22)), entry.get("user", "vagrant"),
                        tuple(entry.get("identityfile", [])))
        self.save_ssh_cache(cfg)
        return cfg

    # -- actions

    def up(self, provider: str | None = None, provision: bool = True,
           on_line: Callable[[str], None] | None = None) -> None:
        self._vagrant.on_line = on_line
        try:
            self._vagrant.up(vm_name=self.name, provider=provider, no_provision=not provision)
        finally:
            self._vagrant.on_line = None

    def provision(self, on_line: Callable[[str], None] | None = None) -> None:
        self._vagrant.on_line = on_line
        try:
            self._vagrant.provision(vm_name=self.name)
        finally:
            self._vagrant.on_line = None

    def halt(self) -> None:
        self._vagrant.halt(vm_name=self.name)

    def destroy(self) -> None:
        self._vagrant.destroy(vm_name=self.name)

    def boxes(self) -> list[tuple[str, str]]:
        """(name, provider) of every box Vagrant has."""
        output = self._vagrant._exec(["box", "list"])
        rows = parse_machine_readable(output)
        names = [d[0] for _t, kind, d in rows if kind == "box-name" and d]
        providers = [d[0] for _t, kind, d in rows if kind == "box-provider" and d]
        return list(zip(names, providers))

    def plugins(self) -> list[str]:
        output = self._vagrant._exec(["plugin", "list"])
        return [d[0] for _t, kind, d in parse_machine_readable(output) if kind == "plugin-name" and d]
