"""`--target docker://[USER@]CONTAINER`: a lab run inside a container that has a Docker CLI (and an engine
it may use: its own, as in a container VM, or one whose socket is mounted), through `docker exec` from
this machine. The local Docker CLI reaches the container's engine as usual (DOCKER_HOST, contexts).

Each command is one `docker exec` of /bin/sh in the container, in a session of its own (setsid) whose
process id comes back first, so that a timeout or Ctrl-C ends it and all it started in the container."""

from __future__ import annotations

import io
import re
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import Callable, Sequence

from checker.errors import TargetError, UsageError
from checker.targets.process import HeldLock, ProcessTransport
from checker.transport import PID_MARK, file_mode

SPEC = re.compile(r"^docker://(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@)?(?P<container>[A-Za-z0-9][A-Za-z0-9_.-]*)$")


def parse(spec: str) -> tuple[str | None, str]:
    match = SPEC.match(spec)
    if not match:
        raise UsageError(f"bad target {spec!r}: use docker://CONTAINER or docker://USER@CONTAINER")
    return match.group("user"), match.group("container")


class DockerExecTransport(ProcessTransport):
    marks_pid = True

    def __init__(self, container: str, user: str | None = None, docker: str = "docker"):
        self.container, self.user, self.docker = container, user, docker
        self.description = f"docker://{user + '@' if user else ''}{container}"
        self._lock: HeldLock | None = None
        self._checked = False

    def _exec(self, *args: str, interactive: bool = False, user: str | None = None) -> list[str]:
        argv = [self.docker, "exec"] + (["-i"] if interactive else [])
        who = user or self.user
        if who:
            argv += ["-u", who]
        return argv + [self.container, *args]

    def argv(self, script: str) -> list[str]:
        self._check()
        # Like an SSH session: in the user's home folder; the command leads a session of its own (setsid).
        child = f"echo {PID_MARK}$$ >&2; exec /bin/sh -c {shlex.quote(script)}"
        wrapper = (f'cd "$HOME" 2>/dev/null || cd /; if command -v setsid >/dev/null 2>&1; then '
                   f"setsid /bin/sh -c {shlex.quote(child)} </dev/null & wait $!; "
                   f"else {child}; fi")
        return self._exec("/bin/sh", "-c", wrapper)

    def stream_argv(self, script: str) -> list[str]:
        self._check()
        return self._exec("/bin/sh", "-c", script, interactive=True)

    def _check(self) -> None:
        """Once: the container exists and runs (a one-line reason otherwise)."""
        if self._checked:
            return
        try:
            proc = subprocess.run([self.docker, "container", "inspect", "--format", "{{.State.Running}}",
                                   self.container], capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise TargetError(f"{self.description}: there is no docker command on this machine") from None
        except subprocess.TimeoutExpired:
            raise TargetError(f"{self.description}: the Docker engine did not answer within 60s") from None
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or ["docker container inspect failed"])[-1]
            raise TargetError(f"cannot reach {self.description}: {why}",
                              hint="is the container's name right, and DOCKER_HOST the engine that runs it?")
        if proc.stdout.strip() != "true":
            raise TargetError(f"the container of {self.description} is not running", hint="start it: docker start")
        self._checked = True

    def end_remote(self, pid: int) -> None:
        # The shell's own kill, as root: `kill -SIG -PGID` ends the process group (dash's kill takes no `--`;
        # never procps' /bin/kill here, which reads `-PGID` without `--` as -1: every process).
        script = (f"kill -TERM -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; sleep 1; "
                  f"kill -KILL -{pid} 2>/dev/null || kill -KILL {pid} 2>/dev/null; true")
        subprocess.run(self._exec("/bin/sh", "-c", script, user="0"), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        """All the files in one `docker exec … tar -x`, as the target user (so they own them)."""
        self._check()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for local, remote in files:
                data = Path(local).read_bytes()
                info = tarfile.TarInfo(str(remote).lstrip("/"))
                info.size, info.mode = len(data), file_mode(local)
                tar.addfile(info, io.BytesIO(data))
        proc = subprocess.run(self._exec("tar", "-x", "-f", "-", "-C", "/", interactive=True),
                              input=buf.getvalue(), capture_output=True, timeout=300)
        if proc.returncode != 0:
            why = proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {proc.returncode}"]
            raise TargetError(f"uploading the lab's files to {self.description} failed: {why[-1]}")

    def lock(self, path: str, wait: float, on_wait: Callable[[], None]) -> bool | None:
        if self._lock is not None and self._lock.proc is not None:
            return True  # held already (several labs in one run)
        self._check()
        folder = shlex.quote(str(Path(path).parent))
        script = (f'cd "$HOME" 2>/dev/null || cd /; mkdir -p {folder} && command -v flock >/dev/null || exit 127; '
                  f"exec flock -w {int(wait)} {shlex.quote(path)} -c 'echo locked; exec cat >/dev/null'")
        self._lock = HeldLock(self._exec("/bin/sh", "-c", script, interactive=True))
        return self._lock.acquire(wait, on_wait)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def open_target(spec: str, options) -> DockerExecTransport:
    user, container = parse(spec)
    return DockerExecTransport(container, user)
