"""The Vagrant boundary: python-vagrant, with the timeouts and return-code checks it lacks.

python-vagrant runs `vagrant` without a timeout and logs, rather than reports, what Vagrant said on
stderr. `Machine` wraps it: every call has a timeout, a failure becomes a `VagrantError` carrying
Vagrant's own one-line reason, and the machine's state is checked before its SSH settings are trusted.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import vagrant


class VagrantError(Exception):
    """A Vagrant call failed; the message is one line, for the user."""


@dataclass(frozen=True)
class SSHConfig:
    host: str
    port: int
    user: str
    key_files: tuple[str, ...]


def find_root(start: Path | None = None) -> Path | None:
    """The folder of the Vagrantfile that `vagrant` would use from `start` (VAGRANT_CWD wins)."""
    if os.environ.get("VAGRANT_CWD"):
        root = Path(os.environ["VAGRANT_CWD"]).expanduser()
        return root if (root / "Vagrantfile").is_file() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Vagrantfile").is_file():
            return folder
    return None


def _reason(stderr: str, stdout: str = "") -> str:
    """Vagrant's own explanation, squeezed into one line."""
    text = (stderr or "").strip() or (stdout or "").strip()
    # Machine-readable output carries errors as `ts,target,error-exit,Class,message`.
    for line in text.splitlines():
        parts = line.split(",", 4)
        if len(parts) == 5 and parts[2] == "error-exit":
            text = parts[4].replace("%!(VAGRANT_COMMA)", ",").replace("\\n", " ")
            break
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return " ".join(text.split())[:400] or "no output"


class _TimedVagrant(vagrant.Vagrant):
    """python-vagrant with a timeout on each command and Vagrant's stderr captured for the error."""

    def __init__(self, root: Path, timeout: float, env: dict | None = None):
        super().__init__(root=str(root), env=env)
        self.timeout = timeout

    def _run_vagrant_command(self, args):
        try:
            command = self._make_vagrant_command(args)
        except RuntimeError:  # python-vagrant found no executable
            raise VagrantError("vagrant is not installed (https://developer.hashicorp.com/vagrant)") from None
        try:
            proc = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True, text=True,
                                  timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise VagrantError(f"`vagrant {' '.join(a for a in args if a)}` did not finish within "
                               f"{self.timeout:.0f}s") from None
        except FileNotFoundError:
            raise VagrantError("vagrant is not installed (https://developer.hashicorp.com/vagrant)") from None
        if proc.returncode != 0:
            raise VagrantError(f"`vagrant {' '.join(a for a in args if a)}` failed: "
                               f"{_reason(proc.stderr, proc.stdout)}")
        return proc.stdout


class Machine:
    """One machine of a Vagrant environment."""

    def __init__(self, root: Path, name: str | None = None, timeout: float = 120.0):
        self.root = Path(root)
        self.name = name
        self._vagrant = _TimedVagrant(self.root, timeout, env={**os.environ})

    @property
    def label(self) -> str:
        return f"Vagrant machine '{self.name or 'default'}' in {self.root}"

    def state(self) -> tuple[str, str | None]:
        """(state, provider), e.g. ('running', 'docker') or ('not_created', 'docker')."""
        statuses = self._vagrant.status(vm_name=self.name)
        if not statuses:
            raise VagrantError(f"`vagrant status` reported no machine in {self.root}")
        status = statuses[0]
        return status.state or "unknown", status.provider

    def ssh_config(self) -> SSHConfig:
        """The SSH settings of a running machine, straight from `vagrant ssh-config`."""
        import paramiko

        text = self._vagrant.ssh_config(vm_name=self.name)
        if not text.strip():
            raise VagrantError(f"`vagrant ssh-config` printed nothing for the {self.label}")
        config = paramiko.SSHConfig.from_text(text)
        host = config.get_hostnames() - {"*"}
        entry = config.lookup(sorted(host)[0] if host else "default")
        if "hostname" not in entry:
            raise VagrantError(f"`vagrant ssh-config` gave no HostName for the {self.label}")
        return SSHConfig(
            host=entry["hostname"],
            port=int(entry.get("port", 22)),
            user=entry.get("user", "vagrant"),
            key_files=tuple(entry.get("identityfile", [])),
        )
