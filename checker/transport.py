"""How commands reach a lab machine: one small protocol, implemented by each kind of target
(checker/targets: local, docker://, ssh://, vagrant).

    run(command, timeout) -> Result(exit_status, stdout, stderr, duration)

`command` is either an argv list (joined with shlex, never concatenated by hand) or a shell script,
run by /bin/sh on the target. A command that outlives its timeout is killed with its whole process
group and comes back with `timed_out=True` and `exit_status=None`.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from checker.records import Result

Command = str | Sequence[str]
LineCallback = Callable[[str], None]  # gets each complete stdout line as it arrives

# Output beyond this many bytes per stream is drained but not kept (a step printing 10 MB stays cheap).
MAX_OUTPUT = 4 * 1024 * 1024
# The first stderr line of a remote command can carry its process id, so that a timeout can kill it.
PID_MARK = "@@check-lab-pid:"


class Transport(Protocol):
    """What the runner needs of a lab machine."""

    description: str

    def run(self, command: Command, timeout: float = 60.0, on_line: LineCallback | None = None) -> Result: ...

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        """Copy local files to absolute paths on the target (their folders must exist)."""

    def lock(self, path: str, wait: float, on_wait: Callable[[], None]) -> bool | None:
        """Hold an exclusive lock on `path` (relative to the user's home) on the target until close(): True
        once held, False if another holder kept it for `wait` seconds, None if the target cannot lock."""

    def close(self) -> None: ...


class Stream(Protocol):
    """A command whose output is read as it comes (`docker events`): `read(timeout)` gives the complete
    lines that arrived within `timeout` seconds ([] if none), or None once the command has ended."""

    def read(self, timeout: float) -> list[str] | None: ...

    def close(self) -> None: ...


class LineBuffer:
    """Bytes in, complete lines out."""

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, data: bytes) -> list[str]:
        self.partial += data
        *lines, self.partial = self.partial.split(b"\n")
        return [decode(line) for line in lines]


def streamed(command: Command) -> str:
    """A command that ends when the one reading it goes away: it runs in the background, and closing its
    stdin (which the reader holds open) ends it; when it ends by itself, so does this."""
    # (A background job's stdin is /dev/null: the reader's stdin is kept on fd 3 for it.)
    return (f"exec 3<&0; ( {to_script(command)}\n) </dev/null & p=$!; ( cat <&3 >/dev/null; kill $p 2>/dev/null ) & "
            "exec 3<&-; wait $p")


def to_script(command: Command) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def process_started_at() -> float | None:
    """When this process started (wall clock, to 10 ms), from /proc: for `time to first remote command`."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def file_mode(path: Path) -> int:
    """The mode a lab file gets on the target: its own, plus execute for scripts (a #! line) whose
    execute bits were lost on the way (an installed package's data files are 0644)."""
    mode = Path(path).stat().st_mode & 0o777
    with open(path, "rb") as fh:
        if fh.read(2) == b"#!":
            mode |= 0o111
    return mode


def decode(data: bytes) -> str:
    # Output that is not UTF-8 still reaches the report, with replacement characters.
    return data.decode("utf-8", errors="replace")


@dataclass
class Sink:
    """Collects one output stream up to MAX_OUTPUT bytes (and hands complete lines to `on_line`)."""

    chunks: list = field(default_factory=list)
    size: int = 0
    truncated: bool = False
    on_line: LineCallback | None = None
    _partial: bytes = b""

    def add(self, data: bytes) -> None:
        if self.on_line is not None and data:
            self._partial += data
            *complete, self._partial = self._partial.split(b"\n")
            for line in complete:
                self.on_line(decode(line))
        room = MAX_OUTPUT - self.size
        if room <= 0:
            self.truncated = self.truncated or bool(data)
            return
        if len(data) > room:
            data, self.truncated = data[:room], True
        self.chunks.append(data)
        self.size += len(data)

    def text(self) -> str:
        return decode(b"".join(self.chunks))
