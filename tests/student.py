"""A scripted student: types a lab's commands exactly as the course's README prints them, in a shell of
their own on the lab machine (as `vagrant ssh` gives one), with the course's clone where the course puts it.

    commands = course_commands(LAB07 / "course" / "README.md")   # the lines after each `vagrant@docker-vm:~$`
    Student(ssh).do(commands)

Mistakes are made by editing the typed commands or the clone's files before typing them. Where a command
cannot be typed as printed (a foreground `docker run` ended by Ctrl-C, a container ID of the course's own),
`retype(lab, changes)` says what the student types instead, and checks that the printed command is there.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

# (Lab 17 prints some prompts after a `$ ` of the student's own computer: `$ vagrant@docker-vm:~$ docker build`.)
PROMPT = re.compile(r"^(?:\$\s+)?(?:(?:vagrant@docker-vm:~[^$\s]*\$|root@docker-vm:[^#]*#)\s*)+")
REPO_NAME = "SNY.OSS.DCK.01.01.00"  # what the course's .env sets GIT_REPO_NAME to, for a fork of that name


def course_commands(readme: Path) -> list[str]:
    """Every command the README shows after a prompt of the course's VM, continuation lines joined as the
    shell would read them (`\\` at the end of a line). Where the prompt turns from root's (`sudo su`) back to
    vagrant's, the student has left root's shell: an `exit` the course does not print."""
    commands: list[str] = []
    in_block, pending, root = False, None, False
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
        as_root = match.group(0).rstrip().endswith("#")
        if root and not as_root:
            commands.append("exit")
        root = as_root
        if command.endswith("\\"):
            pending = command
        else:
            commands.append(command)
    return commands


MACHINE_PROMPT = re.compile(r"^vagrant@([A-Za-z0-9-]+):~\$\s*")


def commands_on_machines(readme: Path) -> list[tuple[str, str]]:
    """A lab over several machines: every command its README shows after a prompt `vagrant@MACHINE:~$`, with
    the machine, continuation lines joined."""
    commands: list[tuple[str, str]] = []
    in_block, pending = False, None
    for raw in readme.read_text().splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            in_block, pending = not in_block, None
            continue
        if not in_block:
            continue
        if pending is not None:
            pending = (pending[0], pending[1] + "\n" + line)
            if not line.endswith("\\"):
                commands.append(pending)
                pending = None
            continue
        match = MACHINE_PROMPT.match(line)
        if not match or not line[match.end():].strip():
            continue
        item = (match.group(1), line[match.end():])
        if item[1].endswith("\\"):
            pending = item
        else:
            commands.append(item)
    return commands


def retype(lab: str, changes: list[tuple[str, list[str] | None]]) -> list[str]:
    """The course's commands of a lab as its README prints them, as a student types them: each change
    replaces the next printed command equal to its first member by what the student types instead (None:
    nothing). Every change must meet a printed command, so the course's text is what is typed."""
    typed, pending = [], list(changes)
    for command in course_commands(FOLDERS[lab] / "course" / "README.md"):
        if pending and command.strip() == pending[0][0]:
            instead = pending.pop(0)[1]
            typed += instead or []
        else:
            typed.append(command)
    assert not pending, f"not printed in lab {lab}'s README: {pending[0][0]!r}"
    return typed


def until_ctrl_c(run: str, url: str) -> list[str]:
    """A foreground `docker run` in the student's first terminal; from the second (their computer, where the
    course's fixed address is the VM's port), the page once it answers; then Ctrl-C in the first."""
    return [f"{run} &", "pid=$!",
            f"for i in $(seq 120); do curl -s {url} && break; sleep 0.5; done",
            "kill -INT $pid", "wait $pid || true"]


def typed(lab: str, hub: dict | None = None) -> list[str]:
    """What a student types for a lab of the course beyond 07: its printed commands, with the closest form
    where one cannot be typed as printed. `hub`: Docker Hub's stand-in (lab 03: hub, user, login)."""
    if lab == "02":
        return retype("02", [
            ("docker run -p 4000:80 friendlyhello:1.0",
             until_ctrl_c("docker run -p 4000:80 friendlyhello:1.0", "http://localhost:4000")),
            ("docker run -p 4000:80 friendlyhello:1.0", None),  # the same run, shown again with its log
        ])
    if lab == "03":  # the student's own login and account, not the course's
        mine = f"{hub['hub']}/{hub['user']}/friendlyhello:1.0"
        return retype("03", [
            ("docker login", [hub["login"]]),
            ("docker tag friendlyhello:1.0 dennydgl1/friendlyhello:1.0", [f"docker tag friendlyhello:1.0 {mine}"]),
            ("docker push dennydgl1/friendlyhello:1.0", [f"docker push {mine}"]),
            ("docker run -p 4000:80 <DockerHUB account>/<Image name>:<image version>",
             until_ctrl_c(f"docker run -p 4000:80 {mine}", "http://localhost:4000")),
        ])
    if lab == "04":  # the ID the course's `docker run -d` printed is the student's own (its name does too)
        course_id = "a52c0d80c11dc8d62f6abfcdb896714aaa05417a4163ce0e210bbcdd22c8657b"
        return retype("04", [(f"docker stop {course_id}", ["docker stop devtest"]),
                             (f"docker rm {course_id}", ["docker rm devtest"])])
    if lab == "05":  # from the lab's folder, which the course forgets to `cd` into
        return [f"cd ~/{REPO_NAME}/labs/05-Bind_mounts"] + retype("05", [])
    if lab == "13":  # the folder's name as it is (the course prints 13-Docker_compose)
        printed = "docker-compose -f /home/vagrant/$GIT_REPO_NAME/labs/13-Docker_compose/docker-compose.yml"
        typed_ = printed.replace("13-Docker_compose", "13-Docker_Compose")
        return retype("13", [(f"{printed} up -d", [f"{typed_} up -d"]), (f"{printed} down -v", [f"{typed_} down -v"])])
    if lab == "14":  # as printed
        return retype("14", [])
    if lab == "10":  # nginx takes a moment to start: the student tries again until it answers
        return retype("10", [("curl http://localhost:80",
                              ["for i in $(seq 60); do curl -s http://localhost:80 && break; sleep 0.5; done"])])
    if lab == "17":
        # From the lab's folder (the course forgets the `cd`); the loop in a first terminal, without -ti (no
        # terminal here; what it prints into loop.out), as long as the student looks at it; jstack of the image's own JDK on DockerTest's PID in
        # the container (the course's VM had a JDK of its own; this one has none), jps in the student's own
        # container; the loop ended from its terminal after `--observe` (OBSERVE_BEFORE).
        loop = "docker run \\\n                        --rm \\\n                        -ti \\\n" \
               "                        -e JAVA_OPT=-Dloop=true \\\n                        docker-test:jdk10"
        jps = "docker exec \\\n                        -ti 0e336e755f70 \\\n                        /jdk-10/bin/jps"
        mine = "$(docker ps -q --filter ancestor=docker-test:jdk10)"
        return [f"cd ~/{REPO_NAME}/labs/17-Java_Docker_awareness"] + retype("17", [
            (loop, [loop.replace(" \\\n                        -ti", "") + " > loop.out 2>&1 &", "sleep 5"]),
            ("sudo jstack 23778", [f"docker exec {mine} sh -c '/jdk-10/bin/jstack $(/jdk-10/bin/jps | grep DockerTest | "
                                   "cut -d\" \" -f1)'"]),
            (jps, [f"docker exec {mine} /jdk-10/bin/jps"]),
        ]) + [f"docker stop {mine} >/dev/null  # Ctrl-C in the loop's terminal"]
    raise KeyError(f"no typing of lab {lab} for the scripted student")


# What `check-lab NN --observe` judges after a student typed the lab (typed()): these claims pass, the
# others are "not judged" (their evidence is the commands' own output, which the engine does not keep).
OBSERVED = {"02": {"image-built", "request-logged"}, "03": {"tagged", "same-image", "pushed"},
            "05": {"compiled-into-the-machines-folder"},
            # before `down -v` (the project is up): all but what `down -v` leaves, which only a run judges
            "13": {"mysql-running", "wordpress-running", "install-page", "db-on-volume"},
            # every claim: the volume, the running container and its mounts, and Portainer's own answers
            "14": {"volume-created", "runs-detached", "data-on-volume", "manages-this-engine", "answers-on-9000",
                   "asks-initial-password"},
            # while the loop runs: its PIDs and its threads; the other claims rest on --rm containers' output
            "17": {"pid-differs", "thread-dump"}}

# Where the student stops to run --observe, the rest typed afterwards: lab 13 before its `down -v`, lab 17 while
# its loop runs.
OBSERVE_BEFORE = {"13": " down -v", "17": "# Ctrl-C in the loop's terminal"}


def until_observed(lab: str, commands: list[str]) -> tuple[list[str], list[str]]:
    """The commands typed before `--observe`, and those typed after it."""
    marker = OBSERVE_BEFORE.get(lab)
    cut = next((i for i, c in enumerate(commands) if marker and c.endswith(marker)), len(commands))
    return commands[:cut], commands[cut:]


LABS = Path(__file__).resolve().parent.parent / "labs"
FOLDERS = {p.name[:2]: p for p in LABS.iterdir() if p.is_dir()}  # "05" -> labs/05-Bind_mounts


class Student:
    """Types into one shell: what `vagrant ssh` gives, with the course's .env sourced (GIT_REPO_NAME)."""

    def __init__(self, ssh):
        self.ssh = ssh
        self.home = ssh.run("printf '%s' \"$HOME\"").stdout

    def clone(self, lab_folder: Path, course_folder: str, files: dict[str, bytes] | None = None) -> str:
        """The course's lab folder where a clone of the course has it (/home/vagrant/$GIT_REPO_NAME/...),
        from our byte-for-byte copy; `files` replaces some (a mistake). Returns the folder."""
        target = f"{self.home}/{REPO_NAME}/{course_folder}"
        assert self.ssh.run(f"sudo -n rm -rf {shlex.quote(self.home + '/' + REPO_NAME)} && mkdir -p {shlex.quote(target)}").ok
        course = lab_folder / "course"
        files_ = sorted(p for p in course.rglob("*") if p.is_file())
        folders = sorted({f"{target}/{p.parent.relative_to(course)}" for p in files_})
        assert self.ssh.run("mkdir -p " + " ".join(shlex.quote(f) for f in folders)).ok
        self.ssh.put_files([(p, f"{target}/{p.relative_to(course)}") for p in files_])
        for name, data in (files or {}).items():
            res = self.ssh.run(f"cat > {shlex.quote(target + '/' + name)} <<'EOF_STUDENT'\n{data.decode()}EOF_STUDENT")
            assert res.ok, res.stderr
        return target

    def do(self, commands: list[str], timeout: float = 900, pause: float = 0):
        """Type the commands, one after the other, into one interactive-like shell (a `sudo su` reads the
        rest, as in a terminal), `pause` seconds apart (reading the lab between them); returns the session's
        Result."""
        between = f"\nsleep {pause}\n" if pause else "\n"
        script = f"export GIT_REPO_NAME={REPO_NAME}\ncd ~\n" + between.join(commands) + "\n"
        return self.ssh.run(f"bash -s <<'EOF_TYPED'\n{script}EOF_TYPED", timeout=timeout)

    def forget(self) -> None:
        """Remove the clone (as root: a container may have written files of root's into it)."""
        self.ssh.run(f"sudo -n rm -rf {shlex.quote(self.home + '/' + REPO_NAME)}")


# --------------------------------------------------------------------------- labs over several machines


def type_on_machines(lab: str, shell) -> None:
    """A student types a swarm lab's commands (11, 12) as printed, each in `vagrant ssh` of the machine its
    prompt names; `shell(machine, command)` types one and returns its Result. Typed otherwise: the join
    command the student's own `init` printed (the course's token is its own swarm's), and lab 12's ping to
    the address busybox1 got here, ended by Ctrl-C after 8 seconds (the course's runs until then)."""
    join = address = None
    for machine, command in commands_on_machines(FOLDERS[lab] / "course" / "README.md"):
        if command.startswith("docker swarm join"):
            command = join
        elif command.rstrip().endswith("ping 172.19.0.34"):
            command = "timeout -s INT 8 " + command.replace("172.19.0.34", address)
        res = shell(machine, command)
        if command.startswith("docker swarm init"):
            join = re.search(r"docker swarm join --token \S+ \S+", res.stdout).group(0)
        if "{{.IPAddress}}" in command:
            address = res.stdout.strip()


# What `check-lab NN --observe` judges on the swarm labs after a student typed them: these pass; the rest
# are not judged (the commands' own output), or not applicable where the kernel lacks what they need.
OBSERVED_ON_MACHINES = {"11": {"three-nodes-ready", "manager-leader"},
                        "12": {"overlay-network", "attachable", "encrypted", "subnet", "address-in-subnet"}}
