"""Transcripts: every command a run sent and what came back, recorded from real runs (`--record FILE`)
and replayed in unit tests, so parsers, facts and claims are tested on real engines' output."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from checker.records import Result
from checker.resources import LEAVE, LEAVE_ONCE
from checker.transport import Command, Transport, to_script

FORMAT = "check-lab-transcript/1"


class RecordingTransport:
    def __init__(self, inner: Transport, path: Path, meta: dict | None = None):
        self.inner = inner
        self.path = Path(path)
        self.meta = meta or {}
        self.calls: list[dict] = []
        self.description = inner.description

    def __getattr__(self, name):  # e.g. first_exec_at: what the wrapped transport knows
        return getattr(self.inner, name)

    def run(self, command: Command, timeout: float = 60.0, on_line=None) -> Result:
        result = self.inner.run(command, timeout, on_line)
        self.calls.append({"command": to_script(command), "timeout": timeout, "result": asdict(result)})
        return result

    def lock(self, path: str, wait: float, on_wait) -> bool | None:
        held = self.inner.lock(path, wait, on_wait)
        self.calls.append({"lock": path, "held": held})
        return held

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        self.inner.put_files(files)
        self.calls.append({"put": [remote for _local, remote in files]})

    def close(self) -> None:
        self.inner.close()
        self.save()

    def save(self) -> None:
        data = {"format": FORMAT, "meta": self.meta, "target": self.description, "calls": self.calls}
        self.path.write_text(json.dumps(data, indent=1) + "\n")


class ReplayTransport:
    """Answers each command with the next recorded result; fails loudly when the run diverges."""

    def __init__(self, path: Path):
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} transcript")
        self.meta = data.get("meta", {})
        self.description = data.get("target", "replay")
        self.calls = [c for c in data["calls"] if "command" in c]
        self.position = 0

    def run(self, command: Command, timeout: float = 60.0, on_line=None) -> Result:
        if self.position >= len(self.calls):
            raise AssertionError(f"replay: no recorded answer for command #{self.position + 1}: {to_script(command)}")
        call = self.calls[self.position]
        self.position += 1
        if _shape(call["command"]) != _shape(to_script(command)):
            raise AssertionError(f"replay: command #{self.position} differs:\n recorded: {call['command']}\n"
                                 f" now:      {to_script(command)}")
        result = dict(call["result"])
        # A batch's boundary is random per run: answer with this run's.
        old, new = BOUNDARY.search(call["command"]), BOUNDARY.search(to_script(command))
        if old and new:
            result["stdout"] = result["stdout"].replace(old.group(0), new.group(0))
        return Result(**result)

    def put_files(self, files: Sequence[tuple[Path, str]]) -> None:
        pass

    def lock(self, path: str, wait: float, on_wait) -> bool | None:
        return True

    def close(self) -> None:
        pass


BOUNDARY = re.compile(r"@@check-lab-[0-9a-f]{16}@@")


# A batched command: its line starts the subshell (after the clock's reading, in batches recorded before).
BATCHED = re.compile(r"^(?:s=\$\(date \+%s%N\); )?\( (.*?)\n\) </dev/null", re.S | re.M)


def _shape(script: str) -> str:
    """A command with its run-specific parts (work folder, batch boundary, times) reduced, for comparing.
    A batch compares as the commands in it, whatever its framing."""
    if "check-lab-batch." in script:
        script = "\n@@batch@@\n".join(BATCHED.findall(script))
    # The work folder: named by the run (which its state records), or by mktemp in transcripts recorded before.
    script = re.sub(r'w="\$\{TMPDIR:-/tmp\}/check-lab\.[0-9a-f]{16}" && mkdir -m 700 "\$w"',
                    'w=$(mktemp -d "${TMPDIR:-/tmp}/check-lab.XXXXXXXX")', script)
    script = re.sub(r"/[^\s'\"]*check-lab\.[A-Za-z0-9]{8}", "<workdir>", script)
    script = BOUNDARY.sub("<boundary>", script)
    # Transcripts recorded before preflight asked for the machine's ID (runner.WHO_AM_I) answer without it.
    script = script.replace(" && { cat /etc/machine-id 2>/dev/null || echo -; }", "")
    script = re.sub(r"since='[0-9: -]+'", "since=<time>", script)
    # (Transcripts recorded before a bridge made in the run's first second stayed the machine's say -ge.)
    script = re.sub(r"\{c:-0\}\" -g[et] \d+", "{c:-0}\" -gt <time>", script)
    script = re.sub(r"started \d+", "started <time>", script)
    # (Transcripts recorded before leaving a swarm was typed again on a daemon's error left it once.)
    script = script.replace(LEAVE, LEAVE_ONCE)
    # The run's state file: when, by whom, and what it found (its content is this run's own).
    script = re.sub(r"printf '%s\\n' '\{\"lab\": [^\n]*?\}' > ", "printf <state> > ", script)
    return re.sub(r" of [^ ]+@[^ ,]+,", " of <who>,", script)
