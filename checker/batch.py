"""Several commands in one round trip: each runs on its own (its stdout, stderr, exit status and duration
kept apart), and the answers come back framed by a boundary that is random per batch.

    results = run_batch(transport, ["docker info ...", "cat state.json", ...], timeout=60)

Each command runs in a subshell with stdin from /dev/null; a failing command does not stop the others.
"""

from __future__ import annotations

import re
import secrets
import shlex
from typing import Sequence

from checker.records import Result
from checker.transport import Command, Transport, to_script


NO_SCRATCH = 97  # the batch could not make its scratch folder


# The seconds since boot, with hundredths, read by the shell itself (`date` where the kernel does not say).
CLOCK = "{ read u _ </proc/uptime; } 2>/dev/null || u=$(date +%s.00)"


def batch_script(commands: Sequence[Command], boundary: str) -> str:
    # A command's stdout goes straight into the answer; its stderr waits in a scratch folder. With less than
    # 1 MiB free there (a full disk) the batch gives up at once and run_batch asks one command at a time.
    # Besides the command, the framing starts no process but a subshell (a `cat` only for a command that
    # wrote to stderr): two `date` and two `cat` a command cost the machine 0.09 CPU-seconds a 24-command batch.
    lines = [f'd=$(mktemp -d "${{TMPDIR:-/tmp}}/check-lab-batch.XXXXXXXX" 2>/dev/null) || exit {NO_SCRATCH}',
             f"df -Pk \"$d\" 2>/dev/null | awk 'NR == 2 {{ exit ($4 < 1024) }}' || {{ rm -rf \"$d\"; exit {NO_SCRATCH}; }}",
             f"{CLOCK}; s=$u"]
    for i, command in enumerate(commands):
        lines.append(f"( {to_script(command)}\n) </dev/null 2>\"$d/e\"; r=$?; {CLOCK}")
        lines.append(f"printf '\\n{boundary} {i} err\\n'; [ -s \"$d/e\" ] && cat \"$d/e\"; "
                     f"printf '\\n{boundary} {i} end %s %s %s\\n' \"$r\" \"$s\" \"$u\"; s=$u")
    lines.append('rm -rf "$d"')
    return "\n".join(lines)


def parse_batch(stdout: str, boundary: str, count: int) -> list[Result | None]:
    """The Results of a batch's commands, in order; None for a command whose answer did not come back."""
    results: list[Result | None] = [None] * count
    # `end STATUS START END`, the clock's readings in seconds (in batches recorded before: `end STATUS NANOSECONDS`).
    pattern = re.compile(rf"\n{re.escape(boundary)} (\d+) (err|end)(?: (\d+) ([\d.]+)(?: ([\d.]+))?)?\n")
    position, out = 0, ""
    for match in pattern.finditer(stdout):
        text = stdout[position:match.start()]
        index = int(match.group(1))
        if match.group(2) == "err":
            out = text
        elif 0 <= index < count:
            if match.group(5) is None:
                took = int(match.group(4)) / 1e9
            else:
                took = max(0.0, float(match.group(5)) - float(match.group(4)))
            results[index] = Result(int(match.group(3)), out, text, took)
        position = match.end()
    return results


def run_batch(transport: Transport, commands: Sequence[Command], timeout: float = 120.0,
              read_only: bool = False) -> list[Result]:
    """Run `commands` in one round trip; a command that did not report (timeout) gets a timed-out Result.
    `read_only`: the commands change nothing, so one that comes twice runs once and both get its answer."""
    if not commands:
        return []
    scripts = [to_script(c) for c in commands]
    asked = list(dict.fromkeys(scripts)) if read_only else scripts
    boundary = f"@@check-lab-{secrets.token_hex(8)}@@"
    res = transport.run(batch_script(asked, boundary), timeout=timeout)
    if res.exit_status == NO_SCRATCH:
        # No room for the batch's scratch folder (a full disk): one round trip per command, then.
        answers = [transport.run(command, timeout=timeout) for command in asked]
    else:
        missing = Result(None, "", res.stderr or "the batch did not finish", res.duration, timed_out=True)
        answers = [r if r is not None else missing for r in parse_batch(res.stdout, boundary, len(asked))]
    if not read_only:
        return answers
    by_script = dict(zip(asked, answers))
    return [by_script[s] for s in scripts]


def quote(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)
