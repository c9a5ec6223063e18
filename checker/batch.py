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


def batch_script(commands: Sequence[Command], boundary: str) -> str:
    # The answers wait in a scratch folder; with less than 1 MiB free there (a full disk) the batch gives up
    # at once and run_batch asks one command at a time instead.
    lines = [f'd=$(mktemp -d "${{TMPDIR:-/tmp}}/check-lab-batch.XXXXXXXX" 2>/dev/null) || exit {NO_SCRATCH}',
             f"df -Pk \"$d\" 2>/dev/null | awk 'NR == 2 {{ exit ($4 < 1024) }}' || {{ rm -rf \"$d\"; exit {NO_SCRATCH}; }}"]
    for i, command in enumerate(commands):
        lines.append(f"s=$(date +%s%N); ( {to_script(command)}\n) </dev/null >\"$d/o\" 2>\"$d/e\"; r=$?; "
                     f"t=$(( $(date +%s%N) - s ))")
        lines.append(f"cat \"$d/o\"; printf '\\n{boundary} {i} err\\n'; cat \"$d/e\"; "
                     f"printf '\\n{boundary} {i} end %s %s\\n' \"$r\" \"$t\"")
    lines.append('rm -rf "$d"')
    return "\n".join(lines)


def parse_batch(stdout: str, boundary: str, count: int) -> list[Result | None]:
    """The Results of a batch's commands, in order; None for a command whose answer did not come back."""
    results: list[Result | None] = [None] * count
    pattern = re.compile(rf"\n{re.escape(boundary)} (\d+) (err|end)(?: (\d+) (\d+))?\n")
    position, out = 0, ""
    for match in pattern.finditer(stdout):
        text = stdout[position:match.start()]
        index = int(match.group(1))
        if match.group(2) == "err":
            out = text
        elif 0 <= index < count:
            results[index] = Result(int(match.group(3)), out, text, int(match.group(4)) / 1e9)
        position = match.end()
    return results


def run_batch(transport: Transport, commands: Sequence[Command], timeout: float = 120.0) -> list[Result]:
    """Run `commands` in one round trip; a command that did not report (timeout) gets a timed-out Result."""
    if not commands:
        return []
    boundary = f"@@check-lab-{secrets.token_hex(8)}@@"
    res = transport.run(batch_script(commands, boundary), timeout=timeout)
    if res.exit_status == NO_SCRATCH:
        # No room for the batch's scratch folder (a full disk): one round trip per command, then.
        return [transport.run(command, timeout=timeout) for command in commands]
    parsed = parse_batch(res.stdout, boundary, len(commands))
    missing = Result(None, "", res.stderr or "the batch did not finish", res.duration, timed_out=True)
    return [r if r is not None else missing for r in parsed]


def quote(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)
