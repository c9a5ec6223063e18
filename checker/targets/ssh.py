"""`--target ssh://USER@HOST[:PORT]`: any SSH server, over one paramiko connection per run.

The connection opens on first use (or in the background, `start_connecting`), is kept alive, and carries
no pty. Commands go through the session's shell (checker/targets/ssh_shell.py); a command whose output
must stream line by line, or a target without setsid, gets a channel of its own.

Host keys: `strict` (the key must be in known_hosts), `accept-new` (an unknown host is remembered; a
changed key is refused), or `vagrant` (Vagrant's throwaway host keys, not checked: its own convention).
"""

from __future__ import annotations

import select
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from checker.errors import TargetError, UsageError
from checker.records import Result
from checker.targets.ssh_shell import SessionShell, ShellBroken
from checker.transport import (PID_MARK, Command, LineBuffer, LineCallback, Sink, decode, file_mode, streamed,
                               to_script)


@dataclass(frozen=True)
class SSHSettings:
    host: str
    port: int = 22
    user: str = "vagrant"
    key_files: tuple[str, ...] = ()
    host_keys: str = "strict"  # strict | accept-new | vagrant
    known_hosts: str | None = None
    password: str | None = None

    def describe(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"


def parse(spec: str):
    """ssh://USER@HOST[:PORT], checked (a one-line usage error otherwise)."""
    from urllib.parse import urlsplit

    parts = urlsplit(spec)
    try:
        port = parts.port or 22
    except ValueError:
        raise UsageError(f"bad port in target {spec!r}") from None
    if not parts.hostname:
        raise UsageError(f"no host in target {spec!r}: use ssh://USER@HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"unexpected path or query in target {spec!r}: use ssh://USER@HOST:PORT")
    if parts.password:
        raise UsageError("passwords do not belong in the target; use --identity KEYFILE")
    return parts, port


def settings_from_spec(spec: str, options) -> SSHSettings:
    """ssh://USER@HOST[:PORT], with --identity, --known-hosts and --accept-new-host-key."""
    parts, port = parse(spec)
    identity = getattr(options, "identity", None)
    if identity and not Path(identity).expanduser().is_file():
        raise UsageError(f"identity file {identity} does not exist")
    return SSHSettings(
        host=parts.hostname, port=port, user=parts.username or "vagrant",
        key_files=(identity,) if identity else (),
        host_keys="accept-new" if getattr(options, "accept_new_host_key", False) else "strict",
        known_hosts=getattr(options, "known_hosts", None),
    )


def open_target(spec: str, options) -> "SSHTransport":
    return SSHTransport(settings_from_spec(spec, options), connect_timeout=options.connect_timeout)


def import_paramiko():
    # paramiko's SSH-config support imports `invoke` (a third of paramiko's import time) for `Match exec`
    # lines, which we never read: unless something imported it already, do without.
    sys.modules.setdefault("invoke", None)
    import logging

    import paramiko  # imported on first use: `check-lab --help` and `list` stay fast

    # paramiko logs the failures we report ourselves, with tracebacks, from its own thread.
    logger = logging.getLogger("paramiko")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return paramiko


class SSHTransport:
    """One paramiko connection per run, opened on first use, kept alive, no pty."""

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
        self._shell = None  # the session's shell (SessionShell), False where there cannot be one
        self._lock_chan = None
        self.first_exec_at: float | None = None  # wall-clock time the first command was sent

    # -- connection

    def connect(self):
        paramiko = import_paramiko()
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
            client.set_missing_host_key_policy(_UnknownHost(self.description, known, s.host_keys == "accept-new"))
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
                text = str(exc).lower()
                # paramiko reports a key the server refused as the last key type it tried to read it as.
                if "key" in text and ("expected" in text or "invalid" in text):
                    raise TargetError(f"SSH authentication to {self.description} failed ({exc})",
                                      hint="check the user and --identity key") from None
                # Something answers, but not as an SSH server would: waiting longer will not help.
                if "banner" in text or "no existing session" in text:
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
        client.get_transport().set_keepalive(self.keepalive)
        return client

    def start_connecting(self) -> None:
        """Open the connection, and the session's shell, in the background while the caller does other
        work (first use waits for it)."""
        import threading

        if self._client is not None or self._connecting is not None:
            return

        def connect() -> None:
            try:
                self._client = self.connect()
                self._shell = SessionShell.open(self) or False
            except BaseException as exc:  # handed to the first use, in the caller's thread
                self._connect_error = exc

        self._connecting = threading.Thread(target=connect, name="check-lab-connect", daemon=True)
        self._connecting.start()

    def settle(self) -> None:
        """Wait for a background connection (and shell) to be opened; its error, if any, waits for first use."""
        if self._connecting is not None:
            self._connecting.join()

    @property
    def client(self):
        import threading

        if self._connecting is threading.current_thread():  # the connecting thread opening the shell
            return self._client
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
            if self._connect_error is not None:
                error, self._connect_error = self._connect_error, None
                raise error
        if self._client is None:
            self._client = self.connect()
        return self._client

    def open_channel(self):
        paramiko = import_paramiko()
        try:
            return self.client.get_transport().open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            self._client = None
            raise TargetError(f"the SSH connection to {self.description} was lost ({exc or type(exc).__name__})",
                              hint="is the machine still up?") from None

    # -- commands

    def run(self, command: Command, timeout: float = 60.0, on_line: LineCallback | None = None) -> Result:
        """Through the session's shell; a fresh channel when output must stream line by line, or when the
        target has no shell for it (no setsid)."""
        self.client  # noqa: B018  (waits for a background connection, and raises its error)
        if on_line is None and self._shell is not False:
            if self._shell is None:
                self._shell = SessionShell.open(self) or False
            if self._shell is not False:
                try:
                    return self._shell.run(to_script(command), timeout)
                except ShellBroken:
                    self._shell = None  # a new one next time; this command on a channel of its own
                except KeyboardInterrupt:
                    self._shell = None
                    raise
        return self.exec_run(command, timeout, on_line)

    def exec_run(self, command: Command, timeout: float = 60.0, on_line: LineCallback | None = None) -> Result:
        """A command on a channel of its own."""
        script = to_script(command)
        started = time.monotonic()
        chan = self.open_channel()
        if self.first_exec_at is None:
            self.first_exec_at = time.time()
        # The login shell prints its pid, then becomes /bin/sh running the script (same pid and process group).
        chan.exec_command(f"echo {PID_MARK}$$ >&2; exec /bin/sh -c {shlex.quote(script)}")
        chan.shutdown_write()
        out, err = Sink(on_line=on_line), Sink()
        deadline = started + timeout
        state = {"pid": None}
        try:
            timed_out, err_head = self._drain(chan, out, err, deadline, state)
        except KeyboardInterrupt:
            chan.close()
            if state["pid"] is not None:
                self.kill(state["pid"])
            raise
        if err_head:
            err.add(err_head)
        if timed_out:
            chan.close()
            if state["pid"] is not None:
                self.kill(state["pid"])
            return Result(None, out.text(), err.text(), time.monotonic() - started, True,
                          out.truncated or err.truncated)
        status = chan.recv_exit_status()
        chan.close()
        if status == -1:
            raise TargetError(f"the SSH connection to {self.description} was lost during a command",
                              hint="is the machine still up?")
        return Result(status, out.text(), err.text(), time.monotonic() - started, False,
                      out.truncated or err.truncated)

    @staticmethod
    def _drain(chan, out: Sink, err: Sink, deadline: float, state: dict):
        """Read both streams to the end (or the deadline) before the exit status is asked for."""
        err_head = b""
        timed_out = False
        while True:
            progressed = False
            while chan.recv_ready():
                out.add(chan.recv(65536))
                progressed = True
            while chan.recv_stderr_ready():
                data = chan.recv_stderr(65536)
                progressed = True
                if state["pid"] is None and err_head is not None:
                    err_head += data
                    if b"\n" in err_head or len(err_head) > 200:
                        first, _, rest = err_head.partition(b"\n")
                        text = decode(first)
                        if text.startswith(PID_MARK) and text[len(PID_MARK):].isdigit():
                            state["pid"] = int(text[len(PID_MARK):])
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
        return timed_out, err_head

    def open_stream(self, command: Command) -> "SSHStream":
        """A command on a channel of its own, read as its output comes (it ends when the channel closes)."""
        chan = self.open_channel()
        chan.exec_command(f"exec /bin/sh -c {shlex.quote(streamed(command))}")
        return SSHStream(chan)

    def reconnect(self) -> None:
        """Drop the connection and open a new one (the shell, the lock and streams go with the old one)."""
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        self._client, self._shell, self._lock_chan = None, None, None
        self.client  # noqa: B018

    def kill(self, pid: int) -> None:
        """End a timed-out command and all it started (its process group); as root if we may."""
        # The login shell's kill, else procps' /bin/kill as root: it must be given `--` before a negative pid
        # (procps-ng 4.0 reads `kill -TERM -PGID` as `kill -TERM -1`: every process).
        script = (f"kill -TERM -- -{pid} 2>/dev/null || sudo -n kill -TERM -- -{pid} 2>/dev/null; sleep 1; "
                  f"kill -KILL -- -{pid} 2>/dev/null || sudo -n kill -KILL -- -{pid} 2>/dev/null; true")
        try:
            self.exec_run(script, timeout=15)
        except TargetError:
            pass

    def lock(self, path: str, wait: float, on_wait: Callable[[], None]) -> bool | None:
        """flock held by a channel that stays open: it is released when the session ends, however it ends."""
        if self._lock_chan is not None and not self._lock_chan.closed:
            return True  # held already by this session (several labs in one run: check-lab course)
        chan = self.open_channel()
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
        paramiko = import_paramiko()
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
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
        if self._shell:
            self._shell.close()
        self._shell = None
        if self._lock_chan is not None:
            self._lock_chan.close()
            self._lock_chan = None
        if self._client is not None:
            self._client.close()
            self._client = None


class SSHStream:
    def __init__(self, chan):
        self.chan, self.lines = chan, LineBuffer()

    def read(self, timeout: float) -> list[str] | None:
        self._drop_stderr()
        if self.chan.recv_ready():
            return self.lines.feed(self.chan.recv(65536))
        if self.chan.exit_status_ready() or self.chan.closed or self.chan.eof_received:
            return None
        select.select([self.chan], [], [], timeout)
        self._drop_stderr()
        if self.chan.recv_ready():
            return self.lines.feed(self.chan.recv(65536))
        if self.chan.exit_status_ready() or self.chan.closed or self.chan.eof_received:
            return None
        return []

    def _drop_stderr(self) -> None:
        """What the command says on its standard error is not the stream (a local stream discards it too):
        unread, it would keep the channel readable, and select() would return at once, every time (Podman's
        `docker events` warns there once, on cgroup v1)."""
        while self.chan.recv_stderr_ready():
            self.chan.recv_stderr(65536)

    def close(self) -> None:
        try:
            self.chan.shutdown_write()  # ends the command (see checker.transport.streamed)
            self.chan.close()
        except Exception:
            pass


class _UnknownHost:
    """A host key that is not in known_hosts: refused, with what is known; or, like OpenSSH's
    StrictHostKeyChecking=accept-new, remembered when the host is not known at all."""

    def __init__(self, description: str, known_hosts: Path, accept_new: bool):
        self.description, self.known_hosts, self.accept_new = description, known_hosts, accept_new

    def missing_host_key(self, client, hostname, key):
        known = client.get_host_keys().lookup(hostname)
        if known:
            # Known under another key type: the host's identity changed (or an old entry remains).
            raise TargetError(
                f"the host key of {self.description} does not match known_hosts (it offers {key.get_name()} "
                f"{key.get_fingerprint().hex()}; known_hosts has {', '.join(sorted(known.keys()))} for it): "
                "refusing to connect",
                hint="if the machine was re-created, remove its old entry with ssh-keygen -R")
        if not self.accept_new:
            raise TargetError(f"the host key of {self.description} is not in known_hosts: refusing to connect",
                              hint="add it (ssh-keyscan) or pass --accept-new-host-key")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(self.known_hosts, "a") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
