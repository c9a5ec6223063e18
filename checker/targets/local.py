"""`--target local`: this machine (e.g. inside a lab VM itself, or a CI runner with Docker)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from checker.targets.process import ProcessTransport
from checker.transport import file_mode


class LocalTransport(ProcessTransport):
    description = "local"

    def __init__(self) -> None:
        self.cwd = str(Path.home())  # like an SSH session, commands start in the user's home folder
        self._lock_file = None

    def argv(self, script: str) -> list[str]:
        # /bin/sh leads a session of its own: a timeout ends it and everything it started.
        return ["/bin/sh", "-c", script]

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        for local, remote in files:
            Path(remote).write_bytes(Path(local).read_bytes())
            os.chmod(remote, file_mode(local))

    def lock(self, path: str, wait: float, on_wait: Callable[[], None]) -> bool | None:
        if self._lock_file is not None:
            return True  # held already (several labs in one run)
        target = Path.home() / path
        target.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(target, "a")
        deadline = time.monotonic() + wait
        waited = False
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                if not waited:
                    on_wait()
                    waited = True
                time.sleep(0.2)

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def open_target(spec: str, options) -> LocalTransport:
    return LocalTransport()
