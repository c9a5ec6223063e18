"""A scripted student: types a lab's commands exactly as the course's README prints them, in a shell of
their own on the lab machine (as `vagrant ssh` gives one), with the course's clone where the course puts it.

    commands = course_commands(LAB07 / "course" / "README.md")   # the lines after each `vagrant@docker-vm:~$`
    Student(ssh).do(commands)

Mistakes are made by editing the typed commands or the clone's files before typing them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

PROMPT = re.compile(r"^(?:(?:vagrant@docker-vm:~\$|root@docker-vm:[^#]*#)\s*)+")
REPO_NAME = "SNY.OSS.DCK.01.01.00"  # what the course's .env sets GIT_REPO_NAME to, for a fork of that name


def course_commands(readme: Path) -> list[str]:
    """Every command the README shows after a prompt of the course's VM, continuation lines joined as the
    shell would read them (`\\` at the end of a line)."""
    commands: list[str] = []
    in_block, pending = False, None
    for raw in readme.read_text().splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            in_block, pending = not in_block, None
            continue
        if not in_block:
            continue
        if pending is not None:
            pending += "\n" + line
            if not line.endswith("\\"):
                commands.append(pending)
                pending = None
            continue
        match = PROMPT.match(line)
        if not match or not line[match.end():].strip():
            continue
        command = line[match.end():]
        if command.endswith("\\"):
            pending = command
        else:
            commands.append(command)
    return commands


class Student:
    """Types into one shell: what `vagrant ssh` gives, with the course's .env sourced (GIT_REPO_NAME)."""

    def __init__(self, ssh):
        self.ssh = ssh
        self.home = ssh.run("printf '%s' \"$HOME\"").stdout

    def clone(self, lab_folder: Path, course_folder: str, files: dict[str, bytes] | None = None) -> str:
        """The course's lab folder where a clone of the course has it (/home/vagrant/$GIT_REPO_NAME/...),
        from our byte-for-byte copy; `files` replaces some (a mistake). Returns the folder."""
        target = f"{self.home}/{REPO_NAME}/{course_folder}"
        assert self.ssh.run(f"rm -rf {shlex.quote(self.home + '/' + REPO_NAME)} && mkdir -p {shlex.quote(target)}").ok
        self.ssh.put_files([(p, f"{target}/{p.name}") for p in sorted((lab_folder / "course").iterdir())])
        for name, data in (files or {}).items():
            res = self.ssh.run(f"cat > {shlex.quote(target + '/' + name)} <<'EOF_STUDENT'\n{data.decode()}EOF_STUDENT")
            assert res.ok, res.stderr
        return target

    def do(self, commands: list[str], timeout: float = 900):
        """Type the commands, one after the other, into one interactive-like shell (a `sudo su` reads the
        rest, as in a terminal); returns the session's Result."""
        script = f"export GIT_REPO_NAME={REPO_NAME}\ncd ~\n" + "\n".join(commands) + "\n"
        return self.ssh.run(f"bash -s <<'EOF_TYPED'\n{script}EOF_TYPED", timeout=timeout)

    def forget(self) -> None:
        self.ssh.run(f"rm -rf {shlex.quote(self.home + '/' + REPO_NAME)}")
