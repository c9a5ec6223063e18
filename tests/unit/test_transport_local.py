"""The local transport: exit status, both streams, timeouts that kill the whole process group."""

from __future__ import annotations

import os
import time

from checker.targets.local import LocalTransport
from checker.transport import MAX_OUTPUT


def test_streams_and_status():
    res = LocalTransport().run("echo out; echo err >&2; exit 3", timeout=10)
    assert (res.exit_status, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert not res.timed_out and res.duration < 5


def test_argv_is_quoted_not_interpreted(tmp_path):
    marker = tmp_path / "owned"
    res = LocalTransport().run(["echo", f"x; touch {marker}"], timeout=10)
    assert res.stdout == f"x; touch {marker}\n"
    assert not marker.exists()


def test_timeout_kills_the_process_group(tmp_path):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    res = LocalTransport().run(f"sleep 60 & echo $! > {pidfile}; wait", timeout=1)
    assert res.timed_out and res.exit_status is None
    assert time.monotonic() - started < 10
    child = int(pidfile.read_text())
    time.sleep(0.2)
    try:
        os.kill(child, 0)
        alive = open(f"/proc/{child}/stat").read().split()[2] != "Z"
    except ProcessLookupError:
        alive = False
    assert not alive


def test_big_output_is_capped_but_drained():
    res = LocalTransport().run("head -c 10000000 /dev/zero | tr '\\0' x", timeout=60)
    assert res.exit_status == 0
    assert len(res.stdout) == MAX_OUTPUT and res.truncated


def test_output_that_is_not_utf8_is_kept_readable():
    res = LocalTransport().run("printf 'caf\\351\\n'", timeout=10)
    assert res.stdout == "caf\ufffd\n"
