"""Run a lab on a target: preflight, upload, steps (each followed by its probes), cleanup, claims.

Nothing the user owns is lost: before the first step the runner looks for the lab's names (images,
containers) on the target. A name left by an earlier, interrupted check-lab run is cleaned up; any
other is the user's, and the run stops (TargetError) unless `replace` is set, in which case the user's
resource is moved aside under a backup name and put back at the end. Afterwards the runner removes
exactly what the run created (and the base image only if the run pulled it).
"""

from __future__ import annotations

import getpass
import json
import re
import shlex
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from checker import claims as claims_mod
from checker.errors import TargetError
from checker.facts import Engine, Facts, StepFact
from checker.lab import Plan, Step
from checker.parsers import BOTH_STREAMS, PARSERS
from checker.probes import PROBES, ProbeError
from checker.batch import quote, run_batch
from checker.transport import Result, Transport, process_started_at

STATE_DIR = ".check-lab"  # under the target user's home: marks a run in progress
SAVED_SUFFIX = "-check-lab-saved"


class Events(Protocol):
    def phase(self, text: str) -> None: ...

    def step_started(self, index: int, total: int, step: Step, command: str) -> None: ...

    def step_finished(self, index: int, total: int, fact: StepFact) -> None: ...


class NoEvents:
    def phase(self, text: str) -> None:
        pass

    def step_started(self, index: int, total: int, step: Step, command: str) -> None:
        pass

    def step_finished(self, index: int, total: int, fact: StepFact) -> None:
        pass


@dataclass
class RunReport:
    plan: Plan
    target: str
    started_at: str
    engine: Engine | None = None
    steps: list[StepFact] = field(default_factory=list)
    claims: list[claims_mod.ClaimResult] = field(default_factory=list)
    statements: list[claims_mod.ClaimResult] = field(default_factory=list)  # the lab's text on this engine
    notes: list[str] = field(default_factory=list)  # what cleanup did or could not do
    duration: float = 0.0
    interrupted: bool = False
    error: str | None = None  # the target failed mid-run
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.claims) and all(c.passed for c in self.claims) and not self.error and not self.interrupted

    @property
    def differences(self) -> list[claims_mod.ClaimResult]:
        """The lab's statements that do not hold as written on this engine (judged ones only)."""
        return [s for s in self.statements if s.verdict == claims_mod.FAIL]

    @property
    def score(self) -> tuple[float, float]:
        return sum(c.points for c in self.claims), sum(c.max_points for c in self.claims)


def docker_hint(stderr: str) -> str:
    low = stderr.lower()
    if "permission denied" in low and "docker" in low:
        return "this user may not use Docker: add it to the docker group (vagrant provision)"
    if "cannot connect to the docker daemon" in low or "is the docker daemon running" in low:
        return "the Docker daemon is not running: start it (sudo service docker start, or vagrant provision)"
    if "not found" in low:
        return "Docker is not installed on the target: vagrant provision"
    return "check the Docker engine on the target (vagrant provision)"


def step_hint(output: str) -> str | None:
    """What to do about a lab command that failed, for the failures students meet most."""
    low = output.lower()
    if "no space left on device" in low:
        return "the machine's disk is full: free some space (df -h; docker system df)"
    if ("pull" in low or "registry" in low or "/v2/" in low) and any(
            s in low for s in ("connection refused", "no such host", "i/o timeout", "timeout exceeded",
                               "network is unreachable", "could not resolve")):
        return "the registry (or the machine's registry mirror) cannot be reached: check its network and mirror"
    if "permission denied" in low and "docker.sock" in low:
        return "this user may not use Docker: vagrant provision"
    return None


class Runner:
    def __init__(self, plan: Plan, transport: Transport, *, events: Events | None = None, replace: bool = False,
                 timeout_factor: float = 1.0, step_timeouts: dict[str, float] | None = None,
                 lock_wait: float = 300.0, observe: bool = False):
        self.plan = plan
        self.lab = plan.lab
        self.t = transport
        self.events = events or NoEvents()
        self.replace = replace
        self.timeout_factor = timeout_factor
        self.step_timeouts = step_timeouts or {}
        self.lock_wait = lock_wait
        self.observe = observe
        self.uid: int | None = None
        self.workdir: str | None = None
        self.home: str | None = None
        self.facts = Facts(values=dict(plan.values), resources={k: plan.resources(k) for k in plan.lab.resources},
                           observe=observe)
        self.pulled_by_us: list[str] = []
        self.moved: list[tuple[str, str, str]] = []  # (kind, original name, backup name)
        self.notes: list[str] = []
        self.cleanup_armed = False

    # -- helpers

    def sh(self, command, timeout: float = 60.0) -> Result:
        return self.t.run(command, timeout=timeout)

    def root_wrap(self, script: str) -> str:
        return script if self.uid == 0 else f"sudo -n sh -c {shlex.quote(script)}"

    # -- preflight

    def preflight(self) -> None:
        """Lock the machine, learn who and where we are, what engine runs, and which lab names exist."""
        self.events.phase(f"connecting to {self.t.description}")
        if not self.observe:  # observe mode writes nothing, not even a lock file
            self._lock()
        names = {kind: self.plan.resources(kind) for kind in ("images", "containers", "pulls")}
        who, info, stale, images, containers, pulls = run_batch(self.t, [
            "id -u && date +%s && printf '%s\\n' \"$HOME\"",
            PROBES["engine"].build({}, None)[0],
            ["cat", self.state_rel],
            self._inspect("image", names["images"]),
            self._inspect("container", names["containers"]),
            self._inspect("image", names["pulls"]),
        ], timeout=60)
        lines = who.stdout.split()
        if not who.ok or len(lines) < 3 or not lines[0].isdigit():
            raise TargetError(f"cannot run commands on {self.t.description}: {who.first_error_line()}")
        self.uid, self.remote_now, self.home = int(lines[0]), int(lines[1]), lines[2]
        try:
            self.facts.engine = PROBES["engine"].parse(info, {})
            self.facts.gathered["engine"] = self.facts.engine
        except ProbeError as exc:
            if self.lab.needs_docker:
                raise TargetError(f"Docker is not usable on {self.t.description}: {exc}",
                                  hint=docker_hint(f"{exc}\n{info.stderr}")) from None
            # A lab that checks the environment itself judges this in its claims.
            self.facts.problems["engine"] = f"{exc} ({docker_hint(f'{exc}{chr(10)}{info.stderr}')})"
            return
        if self.observe:  # the lab's names are the student's work here: look, change nothing
            return

        stale_run = _json_or_none(stale.stdout) if stale.ok else None
        found_images = self._found("image", names["images"], images)
        found_containers = self._found("container", names["containers"], containers)
        found_pulls = self._found("image", names["pulls"], pulls)
        ours_after = stale_run.get("started") if stale_run else None
        leftovers, foreign = [], []
        for kind, found in (("container", found_containers), ("image", found_images)):
            for name, data in found.items():
                created = _epoch(data.get("Created", ""))
                if ours_after is not None and created is not None and created >= ours_after - 1:
                    leftovers.append((kind, name))
                else:
                    foreign.append((kind, name))
        stale_pulls = [ref for ref in found_pulls if stale_run and ref in stale_run.get("pulled", [])]
        if foreign and not self.replace:
            listing = ", ".join(f"{kind} {name}" for kind, name in foreign)
            raise TargetError(
                f"{listing} already exist{'s' if len(foreign) == 1 else ''} on the target and "
                f"{'was' if len(foreign) == 1 else 'were'} not created by check-lab",
                hint="remove or rename them, or run with --replace to set them aside during the check "
                     "(they are put back afterwards)")
        for kind, name in leftovers:
            self._remove(kind, name, "left over by an interrupted check-lab run")
        for ref in stale_pulls:
            self._remove("image", ref, "pulled by an interrupted check-lab run")
        self.cleanup_armed = True
        for kind, name in foreign:
            self._move_aside(kind, name)
        self.pulled_by_us = [ref for ref in names["pulls"] if ref not in found_pulls or ref in stale_pulls]

    @property
    def state_rel(self) -> str:
        return f"{STATE_DIR}/run-{self.lab.id}.json"  # relative to the target user's home

    def _lock(self) -> None:
        """One check-lab run at a time per machine: a second one waits (up to lock_wait), then says why."""
        def holder() -> str:
            res = self.sh(["cat", f"{STATE_DIR}/lock.info"], timeout=30)
            return res.stdout.strip() if res.ok and res.stdout.strip() else "another check-lab run"

        def waiting() -> None:
            self.events.phase(f"waiting for {holder()} to finish (up to {self.lock_wait:.0f}s)")

        held = self.t.lock(f"{STATE_DIR}/lock", self.lock_wait, waiting)
        if held is False:
            raise TargetError(f"the machine is busy: {holder()} is using it",
                              hint="wait for it to finish, or give --lock-wait SECONDS")
        if held is None:
            self.notes.append("the machine has no flock: runs at the same time are not kept apart")

    @staticmethod
    def _inspect(kind: str, names: list[str]) -> str:
        # `true` when there is nothing to look for: an empty answer.
        return shlex.join(["docker", kind, "inspect", "--format", "{{json .}}", *names]) if names else "true"

    def _found(self, kind: str, names: list[str], res: Result) -> dict[str, dict]:
        """Which of `names` exist, from `docker KIND inspect` (which names the missing ones on stderr)."""
        if not names:
            return {}
        if not res.ok and "no such" not in res.stderr.lower():
            raise TargetError(f"docker {kind} inspect failed on the target: {res.first_error_line()}")
        found = {}
        for item in (json.loads(line) for line in res.stdout.splitlines() if line.strip()):
            if kind == "container":
                found[str(item.get("Name", "")).lstrip("/")] = item
            else:
                tags = item.get("RepoTags") or []
                found.update({name: item for name in names if name in tags or _docker_io(name) in tags})
        return found

    def _remove(self, kind: str, name: str, why: str) -> None:
        argv = ["docker", "rm", "-f", name] if kind == "container" else ["docker", "rmi", name]
        res = self.sh(argv, timeout=120)
        if res.ok:
            self.notes.append(f"removed {kind} {name} ({why})")
        elif "no such" not in res.stderr.lower():
            self.notes.append(f"could not remove {kind} {name}: {res.first_error_line()}")

    def _move_aside(self, kind: str, name: str) -> None:
        backup = f"{name}{SAVED_SUFFIX}" if kind == "container" else _backup_tag(name)
        if kind == "container":
            res = self.sh(["docker", "rename", name, backup], timeout=60)
        else:
            res = self.sh(f"docker tag {shlex.quote(name)} {shlex.quote(backup)} && docker rmi {shlex.quote(name)}",
                          timeout=60)
        if not res.ok:
            raise TargetError(f"could not set {kind} {name} aside: {res.first_error_line()}")
        self.moved.append((kind, name, backup))
        self.notes.append(f"set your {kind} {name} aside as {backup} during the check")

    # -- upload

    def upload(self) -> None:
        """Record the run on the target, make the work folder, and upload the lab's files into it (SFTP)."""
        if self.observe:  # nothing is uploaded; the lab's files are what a student's COPY took, roughly
            self.facts.files_total = sum((self.lab.folder / rel).stat().st_size for rel in self.lab.files)
            return
        files = [(self.lab.folder / rel, rel) for rel in self.lab.files]
        self.events.phase(f"uploading {len(files)} lab file(s)")
        state = {"lab": self.lab.id, "started": self.remote_now, "pulled": self.pulled_by_us,
                 "moved": self.moved, "by": f"{getpass.getuser()}@{socket.gethostname()}"}
        who = f"check-lab {self.lab.id} of {state['by']}, started {self.remote_now}"
        subdirs = sorted({str(Path(rel).parent) for _, rel in files if str(Path(rel).parent) != "."})
        record, made = run_batch(self.t, [
            f"mkdir -p {STATE_DIR} && printf '%s\\n' {shlex.quote(who)} > {STATE_DIR}/lock.info && "
            f"printf '%s\\n' {shlex.quote(json.dumps(state))} > {shlex.quote(self.state_rel)}",
            'w=$(mktemp -d "${TMPDIR:-/tmp}/check-lab.XXXXXXXX") && cd "$w" && '
            + (f"mkdir -p {quote(*subdirs)} && " if subdirs else "") + 'printf "%s\\n" "$w"',
        ], timeout=60)
        if not made.ok or not made.stdout.strip():
            self._disk_full('"${TMPDIR:-/tmp}"')
            raise TargetError(f"cannot make a work folder on the target: {made.first_error_line()}")
        self.workdir = made.stdout.strip()
        if not record.ok:
            self._disk_full(STATE_DIR)
            raise TargetError(f"cannot write ~/{self.state_rel} on the target: {record.first_error_line()}")
        try:
            self.t.put_files([(local, f"{self.workdir}/{rel}") for local, rel in files])
        except TargetError:
            self._disk_full(shlex.quote(self.workdir))
            raise
        self.facts.files_total = sum(local.stat().st_size for local, _ in files)

    def _disk_full(self, where: str) -> None:
        """Say so if the file system at `where` (a shell word) on the target is full."""
        free = self.sh(f"df -Pk {where} | awk 'NR == 2 {{print $4}}'", timeout=30)
        if free.ok and free.stdout.strip().isdigit() and int(free.stdout.strip()) < 1024:
            raise TargetError(f"the machine's disk is full ({free.stdout.strip()} kB free where the lab's files go)",
                              hint="free some space: df -h; docker system df")

    # -- steps

    def timeout_for(self, step: Step) -> float:
        return self.step_timeouts.get(step.id, step.timeout * self.timeout_factor)

    def run_steps(self) -> None:
        steps = self.lab.steps
        for step in steps:
            self.facts.steps[step.id] = StepFact(step.id, step.title, self.display(step))
        for i, step in enumerate(steps, 1):
            fact = self.facts.steps[step.id]
            if self.observe and not step.observe:
                fact.status = "skipped"  # it would change the machine; its probes look at the state instead
                self.gather(step)
                self.events.step_finished(i, len(steps), fact)
                continue
            self.events.step_started(i, len(steps), step, fact.command)
            script = self.plan.command(step)
            if step.sudo:
                script = self.root_wrap(script)
            cd = f"cd {shlex.quote(self.workdir)} || exit 1\n" if self.workdir else ""
            wrapped = f"{cd}export DOCKER_CLI_HINTS=false\nset -e\n{script}"
            result = self.sh(wrapped, timeout=self.timeout_for(step))
            fact.result = result
            if result.timed_out:
                fact.status, fact.error = "timed-out", f"no answer within {self.timeout_for(step):.0f}s"
            elif result.exit_status != 0 and not step.may_fail:
                fact.status, fact.error = "failed", result.first_error_line()
                hint = step_hint(result.stderr + result.stdout)
                if hint:
                    fact.error += f" ({hint})"
            else:
                fact.status = "passed"
                if result.exit_status != 0:
                    fact.error = result.first_error_line()
            if step.parse and not result.timed_out:
                try:
                    text = result.stdout + ("\n" + result.stderr if step.parse in BOTH_STREAMS else "")
                    fact.parsed = PARSERS[step.parse](text)
                except (ValueError, KeyError) as exc:
                    fact.error, fact.unreadable = f"unreadable output ({exc})", True
                    if fact.status == "passed":
                        fact.status = "failed"
            self.gather(step)
            self.events.step_finished(i, len(steps), fact)
            # A failed step stops the lab; observe mode only looks, so it goes on and judges what is there.
            if fact.status != "passed" and not self.observe:
                break

    def display(self, step: Step) -> str:
        command = self.plan.command(step)
        return f"sudo {command}" if step.sudo and "\n" not in command else command

    def gather(self, step: Step) -> None:
        """The step's probes, all in one round trip."""
        planned = []
        for probe in step.after:
            if (self.observe and not probe.observe) or (not self.observe and probe.observe == "only"):
                continue
            pdef = PROBES[probe.kind]
            args = self.plan.probe_args(probe)
            built = pdef.build(args, self.facts.engine)
            if built is None:  # nothing to gather on this engine
                self.facts.gathered[probe.name] = None
                continue
            argv, needs_root = built
            command = shlex.join(argv)
            planned.append((probe, pdef, args, self.root_wrap(command) if needs_root else command))
        if not planned:
            return
        timeout = sum(pdef.timeout for _p, pdef, _a, _c in planned) * self.timeout_factor
        for (probe, pdef, args, command), res in zip(planned, run_batch(self.t, [c for *_x, c in planned], timeout)):
            if res.timed_out:
                self.facts.problems[probe.name] = f"{command} gave no answer in time"
                continue
            try:
                self.facts.gathered[probe.name] = pdef.parse(res, args)
            except ProbeError as exc:
                self.facts.problems[probe.name] = str(exc)

    # -- cleanup

    def cleanup(self) -> None:
        """Remove what the run created, in one round trip (plus one per resource set aside with --replace)."""
        if not self.cleanup_armed:
            return
        self.events.phase("cleaning up what the check created")
        commands = {
            "containers": _remove_existing("container", self.plan.resources("containers")),
            "images": _remove_existing("image", self.plan.resources("images")),
            "pulls": _remove_existing("image", self.pulled_by_us),
        }
        if self.facts.engine is not None and self.facts.engine.builder == "buildkit":
            commands["cache"] = _prune_build_cache(self.remote_now - 1)
        commands["files"] = shlex.join(["rm", "-rf", *([self.workdir] if self.workdir else []), self.state_rel])
        results = dict(zip(commands, run_batch(self.t, list(commands.values()), timeout=600)))
        for key, what in (("containers", "the lab's containers"), ("images", "the lab's images"),
                          ("pulls", "the image(s) the lab pulled")):
            res = results[key]
            if res.stdout.split():
                self.notes.append(f"removed {what} ({', '.join(res.stdout.split())})")
            if not res.ok:
                self.notes.append(f"could not remove all of {what}: {res.first_error_line()}")
        removed = results.get("cache")
        if removed is not None and removed.stdout.strip() not in ("", "0"):
            self.notes.append(f"removed {removed.stdout.strip()} build cache record(s) made by the lab's builds")
        for kind, name, backup in reversed(self.moved):
            if kind == "container":
                res = self.sh(["docker", "rename", backup, name], timeout=60)
            else:
                res = self.sh(f"docker tag {shlex.quote(backup)} {shlex.quote(name)} && "
                              f"docker rmi {shlex.quote(backup)}", timeout=60)
            self.notes.append(f"put your {kind} {name} back" if res.ok else
                              f"could not put your {kind} {name} back from {backup}: {res.first_error_line()}")

    # -- all of it

    def run(self) -> RunReport:
        report = RunReport(self.plan, self.t.description, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           notes=self.notes)
        started = time.monotonic()
        try:
            try:
                self.preflight()
                report.engine = self.facts.engine
                self.upload()
                self.run_steps()
            except KeyboardInterrupt:
                report.interrupted = True
            except TargetError as exc:
                if not self.cleanup_armed:
                    raise
                report.error = str(exc)
            finally:
                try:
                    self.cleanup()
                except KeyboardInterrupt:
                    report.interrupted = True
                    report.notes.append("cleanup was interrupted: run check-lab again to finish it")
                except TargetError as exc:
                    report.notes.append(f"cleanup failed: {exc}")
                    report.error = report.error or str(exc)
        finally:
            self.t.close()
        report.steps = list(self.facts.steps.values())
        born, first = process_started_at(), getattr(self.t, "first_exec_at", None)
        if born is not None and first is not None:
            report.timings["first_command_s"] = round(first - born, 3)
        report.claims = claims_mod.evaluate(self.lab.claims, self.facts)
        report.statements = claims_mod.evaluate(self.lab.statements, self.facts)
        report.duration = time.monotonic() - started
        return report


def _epoch(created: str) -> float | None:
    """Docker's RFC 3339 timestamps (nanoseconds, Z) as seconds since the epoch."""
    if not created:
        return None
    text = created.replace(" UTC", "").replace("Z", "+00:00")
    text = re.sub(r"^(\S+) (\S+) ([+-]\d\d)(\d\d)$", r"\1T\2\3:\4", text)  # BuildKit: "date time +0000"
    if "." in text:
        head, frac = text.split(".", 1)
        digits = "".join(ch for ch in frac if ch.isdigit())
        tz = frac[len(digits):]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _json_or_none(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _remove_existing(kind: str, names: list[str]) -> str:
    """Remove those of `names` that exist, in one docker call; print the ones removed."""
    if not names:
        return "true"
    if kind == "container":
        return f"docker rm -f {quote(*names)} 2>/dev/null || true"
    # Children before parents (my-image before my-base-image); docker says what it untagged.
    return (f"docker rmi {quote(*reversed(names))} 2>/dev/null | sed -n 's/^Untagged: //p' | "
            f"grep -x -F {' '.join('-e ' + quote(n) for n in names)} || true")


def _prune_build_cache(since_epoch: float) -> str:
    """Remove the BuildKit cache records made since `since_epoch` (never older ones), leaves first (a record
    goes once its children have gone); print how many. They hold on to the base image's layers: on the
    containerd image store the next pull would otherwise download nothing."""
    since = datetime.fromtimestamp(since_epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    # (The CLI turns a literal \n in --format into a newline, which breaks a quoted "\n": println it is.)
    listing = "docker system df -v --format '{{range .BuildCache}}{{.ID}}|{{.Parent}}|{{.CreatedAt}}{{println}}{{end}}'"
    leaves = ("awk -F'|' -v since=" + shlex.quote(since) + " 'NF >= 3 { id[NR] = $1; parent[$2] = 1; "
              "when[NR] = substr($3, 1, 19) } END { for (i in id) if (when[i] >= since && !(id[i] in parent)) "
              "print id[i] }'")
    return (f"n=0; for level in 1 2 3 4 5 6 7 8 9 10 11 12; do leaves=$({listing} | {leaves}); "
            '[ -n "$leaves" ] || break; for id in $leaves; do '
            'docker builder prune -f --filter "id=$id" >/dev/null && n=$((n + 1)); done; done; echo "$n"')


def _docker_io(ref: str) -> str:
    return ref if "/" in ref else f"docker.io/library/{ref}"


def _backup_tag(ref: str) -> str:
    repo, _, tag = ref.rpartition(":")
    if not repo or "/" in tag:
        repo, tag = ref, "latest"
    return f"{repo}:{tag}{SAVED_SUFFIX}"
