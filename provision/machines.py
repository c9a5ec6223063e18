"""What Vagrant keeps about a machine on disk, read without starting Vagrant (standard library only).

`find_root` finds the Vagrantfile `vagrant` would use; `MachineData` knows where Vagrant keeps a machine's
data and keeps its SSH settings in a cache beside it (`check-lab-ssh.json`), keyed by Vagrant's machine id
and the key files, so that a re-created machine is never reached with stale settings and a check needs no
Ruby start-up.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SSH_CACHE = "check-lab-ssh.json"


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


class MachineData:
    """One machine of a Vagrant environment, as Vagrant's files describe it."""

    def __init__(self, root: Path, name: str | None = None):
        self.root = Path(root)
        self.name = name

    @property
    def label(self) -> str:
        return f"Vagrant machine '{self.name or 'default'}' in {self.root}"

    def machine_dir(self) -> tuple[Path, str] | None:
        """The folder where Vagrant keeps this machine's data, and its provider, if it was created."""
        base = self.root / ".vagrant" / "machines" / (self.name or "default")
        if not base.is_dir():
            return None
        for provider_dir in sorted(base.iterdir()):
            if (provider_dir / "id").is_file() and (provider_dir / "id").read_text().strip():
                return provider_dir, provider_dir.name
        return None

    def _cache_key(self, cfg_keys: tuple[str, ...], provider_dir: Path) -> dict:
        """What the cache is valid for: this machine id, and these key files as they are now."""
        keys = {}
        for key in cfg_keys:
            try:
                st = Path(key).stat()
                keys[key] = [st.st_mtime_ns, st.st_size]
            except OSError:
                keys[key] = None
        return {"id": (provider_dir / "id").read_text().strip(), "keys": keys}

    def save_ssh_cache(self, cfg: SSHConfig) -> None:
        found = self.machine_dir()
        if found is None:
            return
        provider_dir, provider = found
        data = {"provider": provider, "ssh": asdict(cfg), "valid_for": self._cache_key(cfg.key_files, provider_dir)}
        tmp = provider_dir / (SSH_CACHE + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(provider_dir / SSH_CACHE)

    def cached_ssh_config(self) -> tuple[SSHConfig, str] | None:
        """The cached SSH settings and provider, if they still belong to the machine that exists now."""
        found = self.machine_dir()
        if found is None:
            return None
        provider_dir, provider = found
        try:
            data = json.loads((provider_dir / SSH_CACHE).read_text())
            cfg = SSHConfig(**{**data["ssh"], "key_files": tuple(data["ssh"]["key_files"])})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if data.get("valid_for") != self._cache_key(cfg.key_files, provider_dir):
            return None  # a re-created machine, or new keys: never reach it with stale settings
        return cfg, data.get("provider", provider)

    def forget_ssh_cache(self) -> None:
        found = self.machine_dir()
        if found is not None:
            (found[0] / SSH_CACHE).unlink(missing_ok=True)
