"""How commands reach a lab machine: one small protocol, an SSH (paramiko) and a local implementation.

    run(command, timeout) -> Result(exit_status, stdout, stderr, duration)

`command` is either an argv list (joined with shlex, never concatenated by hand) or a shell script,
run by /bin/sh on the target. A command that outlives its timeout is killed with its whole process
group and comes back with `timed_out=True` and `exit_status=None`.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from checker.errors import TargetError

Command = str | Sequence[str]
LineCallback = Callable[[str], None]  # gets each complete stdout line as it arrives

# Output beyond this many bytes per stream is drained but not kept (a step printing 10 MB stays cheap).
MAX_OUTPUT = 4 * 1024 * 1024
# The first stderr line of every remote command carries its process id, so a timeout can kill it.
PID_MARK = "@@check-lab-pid:"


@dataclass(frozen=True)
class Result:
    exit_status: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def first_error_line(self) -> str:
        """The line that says what went wrong: the last one naming an error, else the last one."""
        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                telling = [ln for ln in lines if re.search(r"error|denied|failed|cannot|no such|not found", ln, re.I)]
                line = (telling or lines)[-1]
                return line if len(line) < 300 else line[:297] + "..."
        return f"exit status {self.exit_status}"


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
class _Sink:
    """Collects one output stream up to MAX_OUTPUT bytes."""

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


# ------------------------------------------------------------------------------------------------ local


class LocalTransport:
    """Runs on this machine (`--target local`), e.g. inside a lab VM itself or in CI."""

    description = "local"
    first_exec_at: float | None = None

    def run(self, command: Command, timeout: float = 60.0, on_line: LineCallback | None = None) -> Result:
        started = time.monotonic()
        if self.first_exec_at is None:
            self.first_exec_at = time.time()
        # Like an SSH session, commands start in the user's home folder.
        proc = subprocess.Popen(["/bin/sh", "-c", to_script(command)], stdin=subprocess.DEVNULL, cwd=Path.home(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        out, err = _Sink(on_line=on_line), _Sink()
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
                    if data:
                        sink.add(data)
                    else:
                        stream.close()
                        del streams[fd]
        except KeyboardInterrupt:
            _kill_group(proc)  # it runs in a session of its own: Ctrl-C does not reach it
            raise
        if timed_out:
            _kill_group(proc)
            for stream, _sink in streams.values():
                stream.close()
            proc.wait()
            status = None
        else:
            left = max(0.1, deadline - time.monotonic())
            try:
                status = proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                status, timed_out = None, True
        return Result(status, out.text(), err.text(), time.monotonic() - started, timed_out,
                      out.truncated or err.truncated)

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        for local, remote in files:
            data = Path(local).read_bytes()
            Path(remote).write_bytes(data)
            os.chmod(remote, file_mode(local))

    def lock(self, path: str, wait: float, on_wait: Callable[[], None]) -> bool | None:
        import fcntl

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
        if getattr(self, "_lock_file", None) is not None:
            self._lock_file.close()
            self._lock_file = None


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            continue


# ------------------------------------------------------------------------------------------------ ssh


@dataclass(frozen=True)
class SSHSettings:
    host: str
    port: int = 22
    user: str = "vagrant"
    key_files: tuple[str, ...] = ()
    # "vagrant": Vagrant's convention (throwaway host keys, nothing checked or stored);
    # "strict": the host key must be in known_hosts; "accept-new": unknown keys are added, changed ones refused.
    host_keys: str = "strict"
    known_hosts: str | None = None
    password: str | None = None

    def describe(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"


class SSHTransport:
    """One paramiko connection per session, opened on first use, kept alive, no pty."""

    def __init__(self, settings: SSHSettings, *, connect_timeout: float = 10.0, attempts: int = 3,
                 keepalive: int = 15):
        self.settings = settings
        self.description = settings.describe()
        self.connect_timeout = connect_timeout
        self.attempts = attempts
        self.keepalive = keepalive
        self._client = None
        self._connecting = None  # a thread opening the connection (start_connecting)
        self._connect_error: BaseException | None = None
        self._pid: int | None = None  # of the command being drained
        self._shell = None  # the session's shell (_Shell), False where there cannot be one
        self.first_exec_at: float | None = None  # wall-clock time the first command was sent

    # -- connection

    def _connect(self):
        import logging

        import sys

        # paramiko's SSH-config support imports `invoke` (a third of paramiko's import time) for `Match exec`
        # lines, which we never read: unless something imported it already, do without.
        sys.modules.setdefault("invoke", None)
        import paramiko  # imported on first use: `check-lab --help` and `list` stay fast

        # paramiko logs the failures we report ourselves, with tracebacks, from its own thread.
        logging.getLogger("paramiko").addHandler(logging.NullHandler())
        logging.getLogger("paramiko").propagate = False

        s = self.settings
        client = paramiko.SSHClient()
        if s.host_keys == "vagrant":
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            known = Path(s.known_hosts).expanduser() if s.known_hosts else Path("~/.ssh/known_hosts").expanduser()
            if s.known_hosts is None:
                try:
                    client.load_system_host_keys()
                except OSError:
                    pass
            elif known.exists():
                client.load_host_keys(str(known))
            if s.host_keys == "accept-new":
                client.set_missing_host_key_policy(_AcceptNew(known))
            else:
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
        key_files = [k for k in s.key_files if k]
        for key in key_files:
            if not Path(key).expanduser().is_file():
                raise TargetError(f"SSH key file {key} does not exist")
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                client.connect(
                    s.host, port=s.port, username=s.user, password=s.password,
                    key_filename=[str(Path(k).expanduser()) for k in key_files] or None,
                    look_for_keys=False, allow_agent=False, timeout=self.connect_timeout,
                    banner_timeout=self.connect_timeout, auth_timeout=self.connect_timeout,
                )
                break
            except paramiko.BadHostKeyException as exc:
                raise TargetError(
                    f"the host key of {self.description} does not match known_hosts "
                    f"(got {exc.key.get_name()} {exc.key.get_fingerprint().hex()}): refusing to connect",
                    hint="if the machine was re-created, remove its old entry with ssh-keygen -R") from None
            except paramiko.AuthenticationException:
                raise TargetError(f"SSH authentication to {self.description} failed",
                                  hint="check the user and --identity key") from None
            except paramiko.SSHException as exc:
                if "not found in known_hosts" in str(exc):
                    raise TargetError(
                        f"the host key of {self.description} is not in known_hosts: refusing to connect",
                        hint="add it (ssh-keyscan) or pass --accept-new-host-key") from None
                # paramiko reports a key the server refused as the last key type it tried to read it as.
                if "key" in str(exc).lower() and ("expected" in str(exc).lower() or "invalid" in str(exc).lower()):
                    raise TargetError(f"SSH authentication to {self.description} failed ({exc})",
                                      hint="check the user and --identity key") from None
                # Something answers, but not as an SSH server would: waiting longer will not help.
                if "banner" in str(exc).lower() or "no existing session" in str(exc).lower():
                    raise TargetError(f"{self.description} accepts connections but does not answer as an SSH "
                                      f"server (no SSH banner within {self.connect_timeout:g}s)",
                                      hint="is sshd running there, on that port?") from None
                if attempt == self.attempts:
                    raise TargetError(f"SSH to {self.description} failed: {exc}") from None
            except (socket.timeout, TimeoutError):
                raise TargetError(f"cannot reach {self.description}: no answer within {self.connect_timeout:g}s",
                                  hint="is the machine up, and its address right?") from None
            except (OSError, EOFError) as exc:
                if attempt == self.attempts:  # refused or reset: a machine still booting may answer soon
                    reason = exc.strerror or str(exc) or type(exc).__name__
                    raise TargetError(f"cannot reach {self.description}: {reason}",
                                      hint="is the machine up? (vagrant status)") from None
            time.sleep(delay)
            delay *= 2
        transport = client.get_transport()
        transport.set_keepalive(self.keepalive)
        return client

    def start_connecting(self) -> None:
        """Open the connection in the background while the caller does other work (first use waits for it)."""
        import threading

        if self._client is not None or self._connecting is not None:
            return

        def connect() -> None:
            try:
                self._client = self._connect()
            except BaseException as exc:  # handed to the first use, in the caller's thread
                self._connect_error = exc

        self._connecting = threading.Thread(target=connect, name="check-lab-connect", daemon=True)
        self._connecting.start()

    @property
    def client(self):
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
            if self._connect_error is not None:
                error, self._connect_error = self._connect_error, None
                raise error
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _open_channel(self):
        import paramiko

        try:
            return self.client.get_transport().open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            self._client = None
            raise TargetError(f"the SSH connection to {self.description} was lost ({exc or type(exc).__name__})",
                              hint="is the machine still up?") from None

    # -- commands

    def run(self, command: Command, timeout: float = 60.0, on_line: LineCallback | None = None) -> Result:
        """Through the session's shell (no per-command SSH channel: ~50 ms less each); a fresh channel when
        output must stream line by line, or when the target has no shell for it (no setsid)."""
        if on_line is None and self._shell is not False:
            if self._shell is None:
                self._shell = _Shell.open(self) or False
            if self._shell is not False:
                try:
                    return self._shell.run(to_script(command), timeout)
                except _ShellBroken:
                    self._shell = None  # a new one next time; this command on a channel of its own
        return self._exec_run(command, timeout, on_line)

    def _exec_run(self, command: Command, timeout: float = 60.0, on_line: LineCallback | None = None) -> Result:
        script = to_script(command)
        started = time.monotonic()
        chan = self._open_channel()
        if self.first_exec_at is None:
            self.first_exec_at = time.time()
        # The login shell prints its pid, then becomes /bin/sh running the script (same pid and process group).
        chan.exec_command(f"echo {PID_MARK}$$ >&2; exec /bin/sh -c {shlex.quote(script)}")
        chan.shutdown_write()
        out, err = _Sink(on_line=on_line), _Sink()
        deadline = started + timeout
        try:
            timed_out, pid, err_head = self._drain(chan, out, err, deadline)
        except KeyboardInterrupt:
            chan.close()
            if self._pid is not None:
                self._kill(self._pid)
            raise
        if err_head:
            err.add(err_head)
        if timed_out:
            chan.close()
            if pid is not None:
                self._kill(pid)
            return Result(None, out.text(), err.text(), time.monotonic() - started, True,
                          out.truncated or err.truncated)
        status = chan.recv_exit_status()
        chan.close()
        if status == -1:
            raise TargetError(f"the SSH connection to {self.description} was lost during a command",
                              hint="is the machine still up?")
        return Result(status, out.text(), err.text(), time.monotonic() - started, False,
                      out.truncated or err.truncated)

    def _drain(self, chan, out: _Sink, err: _Sink, deadline: float):
        """Read both streams to the end (or the deadline) before the exit status is asked for."""
        err_head = b""
        pid = self._pid = None
        timed_out = False
        while True:
            progressed = False
            while chan.recv_ready():
                out.add(chan.recv(65536))
                progressed = True
            while chan.recv_stderr_ready():
                data = chan.recv_stderr(65536)
                progressed = True
                if pid is None and err_head is not None:
                    err_head += data
                    if b"\n" in err_head or len(err_head) > 200:
                        first, _, rest = err_head.partition(b"\n")
                        text = decode(first)
                        if text.startswith(PID_MARK) and text[len(PID_MARK):].isdigit():
                            pid = self._pid = int(text[len(PID_MARK):])
                            err.add(rest)
                        else:
                            err.add(err_head)
                        err_head = None
                else:
                    err.add(data)
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            if chan.closed and not progressed:
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
            if not progressed:
                select.select([chan], [], [], min(0.5, max(0.0, deadline - time.monotonic())))
        return timed_out, pid, err_head

    def _kill(self, pid: int) -> None:
        """End a timed-out command and all it started (its process group); as root if we may."""
        group = f"-{pid}"
        script = (f"kill -TERM -- {group} 2>/dev/null || sudo -n kill -TERM -- {group} 2>/dev/null; sleep 1; "
                  f"kill -KILL -- {group} 2>/dev/null || sudo -n kill -KILL -- {group} 2>/dev/null; true")
        try:
            self._exec_run(script, timeout=15)
        except TargetError:
            pass

    def lock(self, path: str, wait: float, on_wait: Callable[[], None]) -> bool | None:
        """flock held by a channel that stays open: it is released when the session ends, however it ends."""
        chan = self._open_channel()
        folder = shlex.quote(str(Path(path).parent))
        chan.exec_command(f"mkdir -p {folder} && command -v flock >/dev/null || exit 127; "
                          f"exec flock -w {int(wait)} {shlex.quote(path)} -c 'echo locked; exec cat >/dev/null'")
        deadline = time.monotonic() + wait + 30
        buf, waited = b"", False
        started = time.monotonic()
        while b"locked\n" not in buf:
            if chan.recv_ready():
                buf += chan.recv(1024)
                continue
            if chan.exit_status_ready():
                status = chan.recv_exit_status()
                chan.close()
                return None if status == 127 else False
            if not waited and time.monotonic() - started > 1.0:
                on_wait()
                waited = True
            if time.monotonic() > deadline:
                chan.close()
                return False
            select.select([chan], [], [], 0.2)
        self._lock_chan = chan
        return True

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        import paramiko

        try:
            sftp = self.client.open_sftp()
            try:
                for local, remote in files:
                    sftp.put(str(local), remote)
                    sftp.chmod(remote, file_mode(local))
            finally:
                sftp.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TargetError(f"uploading the lab's files to {self.description} failed: {exc}") from None

    def close(self) -> None:
        if self._shell:
            self._shell.close()
        self._shell = None
        if getattr(self, "_lock_chan", None) is not None:
            self._lock_chan.close()
            self._lock_chan = None
        if self._client is not None:
            self._client.close()
            self._client = None


class _AcceptNew:
    """Like OpenSSH's StrictHostKeyChecking=accept-new: remember unknown hosts, refuse changed keys."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(self.known_hosts, "a") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class _ShellBroken(Exception):
    """The session's shell is unusable (it died, or a command in it could not be ended)."""


class _Shell:
    """One long-lived `sh` on one SSH channel: every command is written to its stdin and framed by markers
    on both streams, so each answer comes back whole without opening a channel per command. A command runs
    in a session of its own (setsid), so a timeout or Ctrl-C ends it and all it started, not the shell."""

    def __init__(self, owner: "SSHTransport", chan):
        self.owner = owner
        self.chan = chan
        self.out = bytearray()
        self.err = bytearray()

    @classmethod
    def open(cls, owner: "SSHTransport") -> "_Shell | None":
        chan = owner._open_channel()
        if owner.first_exec_at is None:
            owner.first_exec_at = time.time()
        chan.exec_command("command -v setsid >/dev/null || exit 3; echo @@check-lab-shell; exec /bin/sh -s")
        shell = cls(owner, chan)
        try:
            shell._read_until(lambda: b"@@check-lab-shell\n" in shell.out, time.monotonic() + 30)
        except (_ShellBroken, TimeoutError):
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
                raise _ShellBroken()
            if time.monotonic() >= deadline:
                raise TimeoutError()
            select.select([self.chan], [], [], min(0.5, max(0.0, deadline - time.monotonic())))

    def run(self, script: str, timeout: float) -> Result:
        token = secrets.token_hex(8)
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
            raise _ShellBroken() from None
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
                self.owner._kill(pid)
            try:  # the shell goes on once the command has ended
                self._read_until(finished, time.monotonic() + 20)
            except (TimeoutError, _ShellBroken):
                self.close()
                raise _ShellBroken() from None
            out, err, _status = self._take(start, end, pid_mark)
            return Result(None, out.text(), err.text(), time.monotonic() - started, True,
                          out.truncated or err.truncated)
        except KeyboardInterrupt:
            pid = _marked_pid(self.err, pid_mark)
            if pid is not None:
                self.owner._kill(pid)
            self.close()
            self.owner._shell = None
            raise
        out, err, status = self._take(start, end, pid_mark)
        return Result(status, out.text(), err.text(), time.monotonic() - started, False,
                      out.truncated or err.truncated)

    def _take(self, start: bytes, end: bytes, pid_mark: bytes) -> tuple[_Sink, _Sink, int]:
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
        out, err = _Sink(), _Sink()
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
