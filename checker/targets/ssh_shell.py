"""The SSH session's shell: one long-lived `sh` on one channel, so that a run's commands need no channel
each (a channel costs ~50 ms; a command through the shell ~3 ms).

Every command is written to the shell's stdin and framed by markers on both streams, so each answer comes
back whole. A command runs in a session of its own (setsid), so a timeout or Ctrl-C ends it and all it
started, not the shell."""

from __future__ import annotations

import os
import select
import shlex
import time
from typing import TYPE_CHECKING

from checker.records import Result
from checker.transport import Sink

if TYPE_CHECKING:
    from checker.targets.ssh import SSHTransport


class ShellBroken(Exception):
    """The session's shell is unusable (it died, or a command in it could not be ended)."""


class SessionShell:
    def __init__(self, owner: "SSHTransport", chan):
        self.owner = owner
        self.chan = chan
        self.out = bytearray()
        self.err = bytearray()

    @classmethod
    def open(cls, owner: "SSHTransport") -> "SessionShell | None":
        """A shell on a new channel, or None where the target cannot have one (no setsid)."""
        chan = owner.open_channel()
        if owner.first_exec_at is None:
            owner.first_exec_at = time.time()
        chan.exec_command("command -v setsid >/dev/null || exit 3; echo @@check-lab-shell; exec /bin/sh -s")
        shell = cls(owner, chan)
        try:
            shell._read_until(lambda: b"@@check-lab-shell\n" in shell.out, time.monotonic() + 30)
        except (ShellBroken, TimeoutError):
            chan.close()
            return None
        shell.out.clear()
        return shell

    def _read_until(self, done, deadline: float) -> None:
        while not done():
            progressed = False
            while self.chan.recv_ready():
                self.out += self.chan.recv(65536)
                progressed = True
            while self.chan.recv_stderr_ready():
                self.err += self.chan.recv_stderr(65536)
                progressed = True
            if progressed:
                continue
            if self.chan.exit_status_ready() or self.chan.closed:
                raise ShellBroken()
            if time.monotonic() >= deadline:
                raise TimeoutError()
            select.select([self.chan], [], [], min(0.5, max(0.0, deadline - time.monotonic())))

    def run(self, script: str, timeout: float) -> Result:
        token = os.urandom(8).hex()
        start, end = f"@@cl-{token}-start\n".encode(), f"\n@@cl-{token}-end ".encode()
        pid_mark = f"@@cl-{token}-pid ".encode()
        child = f"echo @@cl-{token}-pid $$ >&2; exec /bin/sh -c {shlex.quote(script)}"
        program = (f"printf '%s\\n' @@cl-{token}-start; printf '%s\\n' @@cl-{token}-start >&2\n"
                   f"setsid /bin/sh -c {shlex.quote(child)} </dev/null & wait $!\n"
                   f"printf '\\n@@cl-{token}-end %s\\n' \"$?\"; printf '\\n@@cl-{token}-end 0\\n' >&2\n")
        started = time.monotonic()
        try:
            self.chan.sendall(program.encode())
        except OSError:
            raise ShellBroken() from None
        deadline = started + timeout
        pid = None

        def finished() -> bool:
            return (start in self.out and end in self.out[self.out.find(start):] and
                    self.out.endswith(b"\n") and start in self.err and end in self.err[self.err.find(start):]
                    and self.err.endswith(b"\n"))

        try:
            self._read_until(finished, deadline)
        except TimeoutError:
            pid = _marked_pid(self.err, pid_mark)
            if pid is not None:
                self.owner.kill(pid)
            try:  # the shell goes on once the command has ended
                self._read_until(finished, time.monotonic() + 20)
            except (TimeoutError, ShellBroken):
                self.close()
                raise ShellBroken() from None
            out, err, _status = self._take(start, end, pid_mark)
            return Result(None, out.text(), err.text(), time.monotonic() - started, True,
                          out.truncated or err.truncated)
        except KeyboardInterrupt:
            pid = _marked_pid(self.err, pid_mark)
            if pid is not None:
                self.owner.kill(pid)
            self.close()
            raise
        out, err, status = self._take(start, end, pid_mark)
        return Result(status, out.text(), err.text(), time.monotonic() - started, False,
                      out.truncated or err.truncated)

    def _take(self, start: bytes, end: bytes, pid_mark: bytes) -> tuple[Sink, Sink, int]:
        """Cut this command's answer out of both streams (what follows stays for the next command)."""
        results = []
        for buf in (self.out, self.err):
            a = buf.find(start) + len(start)
            b = buf.find(end, a)
            line_end = buf.find(b"\n", b + len(end))
            body, status = bytes(buf[a:b]), bytes(buf[b + len(end):line_end]).strip()
            del buf[:line_end + 1]
            results.append((body, status))
        (out_body, status), (err_body, _s) = results
        if err_body.startswith(pid_mark):
            err_body = err_body.split(b"\n", 1)[1] if b"\n" in err_body else b""
        out, err = Sink(), Sink()
        out.add(out_body)
        err.add(err_body)
        return out, err, int(status) if status.isdigit() else -1

    def close(self) -> None:
        try:
            self.chan.close()
        except Exception:
            pass


def _marked_pid(buf: bytearray, mark: bytes) -> int | None:
    at = buf.find(mark)
    if at < 0:
        return None
    digits = bytes(buf[at + len(mark):]).split(b"\n", 1)[0].strip()
    return int(digits) if digits.isdigit() else None
