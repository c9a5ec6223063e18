"""The shared base of targets reached through a local process: `local` (/bin/sh here) and `docker://`
(`docker exec` into a container). One place for reading both streams to the end, timeouts that end the
command and all it started, Ctrl-C, big and non-UTF-8 output."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

from checker.records import Result
from checker.transport import PID_MARK, Command, LineBuffer, LineCallback, Sink, decode, streamed, to_script


class ProcessTransport:
    """Runs each command as a local process (argv from `argv(script)`). Subclasses say how a command
    becomes a process, and how a timed-out one is ended where it runs."""

    description = "process"
    first_exec_at: float | None = None
    # Whether the command's first stderr line is PID_MARK<pid> (the pid to end on a timeout, on the target).
    marks_pid = False
    cwd: str | None = None

    def argv(self, script: str) -> list[str]:
        raise NotImplementedError

    def end_remote(self, pid: int) -> None:
        """End a timed-out command on the target, with its process group (when it runs elsewhere)."""

    def run(self, command: Command, timeout: float = 60.0, on_line: LineCallback | None = None) -> Result:
        started = time.monotonic()
        if self.first_exec_at is None:
            self.first_exec_at = time.time()
        proc = subprocess.Popen(self.argv(to_script(command)), stdin=subprocess.DEVNULL, cwd=self.cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        out, err = Sink(on_line=on_line), Sink()
        head = bytearray() if self.marks_pid else None  # stderr until the pid line is complete
        pid: int | None = None
        streams = {proc.stdout.fileno(): (proc.stdout, out), proc.stderr.fileno(): (proc.stderr, err)}
        deadline = started + timeout
        timed_out = False
        try:
            while streams:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                ready, _, _ = select.select(list(streams), [], [], min(left, 1.0))
                for fd in ready:
                    stream, sink = streams[fd]
                    data = os.read(fd, 65536)
                    if not data:
                        stream.close()
                        del streams[fd]
                        continue
                    if sink is err and head is not None:
                        head += data
                        if b"\n" not in head and len(head) < 200:
                            continue
                        first, _, rest = bytes(head).partition(b"\n")
                        text = decode(first)
                        if text.startswith(PID_MARK) and text[len(PID_MARK):].isdigit():
                            pid, data = int(text[len(PID_MARK):]), rest
                        else:
                            data = bytes(head)
                        head = None
                    sink.add(data)
        except KeyboardInterrupt:
            self._end(proc, pid)  # it runs in a session of its own: Ctrl-C does not reach it
            raise
        if head:
            err.add(bytes(head))
        if timed_out:
            self._end(proc, pid)
            for stream, _sink in streams.values():
                stream.close()
            status = None
        else:
            try:
                status = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._end(proc, pid)
                status, timed_out = None, True
        return Result(status, out.text(), err.text(), time.monotonic() - started, timed_out,
                      out.truncated or err.truncated)

    def _end(self, proc: subprocess.Popen, pid: int | None) -> None:
        if pid is not None:
            self.end_remote(pid)
        kill_group(proc)

    def open_stream(self, command: Command) -> "ProcessStream":
        return ProcessStream(subprocess.Popen(self.stream_argv(streamed(command)), stdin=subprocess.PIPE,
                                              cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                              start_new_session=True), self)

    def stream_argv(self, script: str) -> list[str]:
        return ["/bin/sh", "-c", script]

    # -- files and the lock: through a process too

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        raise NotImplementedError

    def lock(self, path: str, wait: float, on_wait: Callable[[], None]) -> bool | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def kill_group(proc: subprocess.Popen) -> None:
    """End a local process and its process group: TERM, then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=2)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class ProcessStream:
    def __init__(self, proc: subprocess.Popen, owner: ProcessTransport):
        self.proc, self.owner, self.lines = proc, owner, LineBuffer()

    def read(self, timeout: float) -> list[str] | None:
        if self.proc.stdout is None:
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return []
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            self.close()
            return None
        return self.lines.feed(data)

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()  # ends the command, also where it runs elsewhere (docker exec)
            except OSError:
                pass
            self.proc.stdin = None
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            kill_group(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
            self.proc.stdout = None


class HeldLock:
    """A lock held by a process that stays alive (`flock … cat`): closing its stdin releases it, and so does
    the process ending, however it ends."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    def acquire(self, wait: float, on_wait: Callable[[], None]) -> bool | None:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        fd = self.proc.stdout.fileno()
        started, waited, buf = time.monotonic(), False, b""
        deadline = started + wait + 30
        while b"locked\n" not in buf:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                data = os.read(fd, 1024)
                if data:
                    buf += data
                    continue
                status = self.proc.wait()
                self.proc = None
                return None if status == 127 else False
            if not waited and time.monotonic() - started > 1.0:
                on_wait()
                waited = True
            if time.monotonic() > deadline:
                self.release()
                return False
        return True

    def release(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
        self.proc = None
