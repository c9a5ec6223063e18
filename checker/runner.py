"""Run a lab on a target: preflight, upload, steps (each followed by its probes), cleanup, claims.

The runner only orchestrates. What a lab creates, and how it is guarded and removed, is the business of
the resource kinds (checker/resources.py); how commands travel, of the target (checker/targets); what the
output means, of the parsers, probes and checks; what the report looks like, of the reporters.

Nothing the user owns is lost: before the first step the runner asks the machine which of the lab's names
exist. An interrupted run's leftovers are removed; anyone else's stop the run (TargetError) unless
`replace` is set and the kind can be set aside (renamed for the run, put back at the end). Afterwards the
runner removes exactly what the run created (and the base image only if the run pulled it).
"""

from __future__ import annotations

import getpass
import json
import re
import secrets
import shlex
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from checker import checks
from checker.batch import quote, run_batch
from checker.errors import TargetError
from checker.facts import Facts
from checker.lab import TEMPLATE_RE, Plan, Step
from checker.parsers import BOTH_STREAMS, PARSERS
from checker.probes import PROBES, ProbeError
from checker.records import (Engine, Result, RunReport, StepFact, combined_fingerprint, departures_run, redact,
                             redacted, source)
from checker.resources import KINDS, Kind, ResourceError, assess
from checker.transport import Transport, process_started_at, to_script

# Who and where we are: user ID, the machine's clock, home, and the machine's ID (or - where it has none).
WHO_AM_I = "id -u && date +%s && printf '%s\\n' \"$HOME\" && { cat /etc/machine-id 2>/dev/null || echo -; }"
NOTHING_TO_ASK = "this engine has nothing of the kind to ask about"
STATE_DIR = ".check-lab"  # under the target user's home: marks a run in progress
WORKDIR_PREFIX = "check-lab."  # the run's work folder, in the target's $TMPDIR (or /tmp)
# Observe mode shows it changed nothing by the engine's own log of changes since the run began (Docker's events);
# where the engine keeps no such log (Podman), by a hash of its containers (and their states), images, volumes
# and networks, taken before and after.
FINGERPRINT = ("{ docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.Image}} {{.State}}' && "
               "docker image ls -a --no-trunc --format '{{.ID}} {{.Repository}}:{{.Tag}}' && "
               "docker volume ls --format '{{.Name}}' && docker network ls --no-trunc --format '{{.ID}} {{.Name}}'; } "
               "| LC_ALL=C sort | sha256sum | cut -c1-64")


class Events(Protocol):
    def phase(self, text: str) -> None: ...

    def step_started(self, index: int, total: int, title: str, command: str) -> None: ...

    def step_finished(self, index: int, total: int, fact: StepFact) -> None: ...


class NoEvents:
    def phase(self, text: str) -> None:
        pass

    def step_started(self, index: int, total: int, title: str, command: str) -> None:
        pass

    def step_finished(self, index: int, total: int, fact: StepFact) -> None:
        pass


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


def _not_found_in(template: str, not_found: dict[str, str]) -> str | None:
    """Observe mode: why a command cannot run, when it reads a captured value that was not found."""
    for name in TEMPLATE_RE.findall(template):
        if name.startswith("captured.") and name[len("captured."):] in not_found:
            short = name[len("captured."):]
            return f"observe mode has no {short}: {not_found[short]}"
    return None


class Runner:
    def __init__(self, plan: Plan, transport: Transport, *, events: Events | None = None, replace: bool = False,
                 timeout_factor: float = 1.0, step_timeouts: dict[str, float] | None = None,
                 lock_wait: float = 300.0, observe: bool = False, close: bool = True, student: str | None = None):
        self.plan = plan
        self.close = close  # False: the caller runs more labs over the same connection (check-lab course)
        self.lab = plan.lab
        self.t = transport
        self.events = events or NoEvents()
        self.replace = replace
        self.timeout_factor = timeout_factor
        self.step_timeouts = step_timeouts or {}
        self.lock_wait = lock_wait
        self.observe = observe
        self.student = student  # --student: the machine must be this student's (its engine's label)
        self.uid: int | None = None
        self.machine_id: str | None = None
        self.workdir: str | None = None
        self.home: str | None = None
        self.facts = Facts(values=dict(plan.values), observe=observe)
        self.pulled_by_us: list[str] = []
        self.moved: list[tuple[str, str, str]] = []  # (kind key, original name, backup name)
        self.existing: dict[str, list[str]] = {}  # the lab's names that existed before this run
        self.notes: list[str] = []
        self.cleanup_armed = False
        self.fingerprint_before: str | None = None
        self.changes_since: str | None = None  # observe mode: the engine's clock when the run began
        # This machine's engine and where it was read (the facts' engine is the lab's: of several machines,
        # the first machine's).
        self.engine: Engine | None = None
        self.engine_source: dict | None = None
        self.stale_started: float | None = None
        self.stale_workdir: str | None = None
        self.runtime: dict[str, str] = {}  # what the run learnt: when it started, captured values

    # -- helpers

    def sh(self, command, timeout: float = 60.0) -> Result:
        return self.t.run(command, timeout=timeout)

    def root_wrap(self, script: str) -> str:
        return script if self.uid == 0 else f"sudo -n sh -c {shlex.quote(script)}"

    @property
    def state_rel(self) -> str:
        return f"{STATE_DIR}/run-{self.lab.id}.json"  # relative to the target user's home

    def _kinds(self) -> list[tuple[Kind, list[str]]]:
        """The lab's resource kinds (registry order) with their names."""
        return [(KINDS[key], self.plan.resources(key)) for key in KINDS if key in self.lab.resources]

    # -- preflight

    def _check_student(self) -> None:
        """--student ID: the machine's engine must be labelled for that student (LAB_STUDENT at provisioning),
        so that a copy of another student's machine, or the wrong machine, is not checked as theirs."""
        if self.student is None:
            return
        owner = self.engine.student
        if owner is None:
            raise TargetError(f"the engine of {self.t.description} names no student (no label check-lab.student): "
                              f"provision the machine for its student first (LAB_STUDENT={self.student}, "
                              f"lab-env provision --student {self.student})")
        if owner != self.student:
            raise TargetError(f"this machine is {owner}'s, not {self.student}'s: its engine is labelled "
                              f"check-lab.student={owner} ({self.t.description})")

    def preflight(self) -> None:
        """Lock the machine, learn who and where we are, what engine runs, and which lab names exist."""
        self.events.phase(f"connecting to {self.t.description}")
        if not self.observe:  # observe mode writes nothing, not even a lock file
            self._lock()
        # (Observe mode judges what the student made: it guards nothing, and asks nothing of what only guards.)
        kinds = [] if self.observe else [(kind, names) for kind, names in self._kinds() if names]
        # Observe mode asks the engine through its API where it can (its probes run on every student's machine).
        engine_args = {"api": True} if self.observe else {}
        engine_command = PROBES["engine"].build(engine_args, None)[0]
        who, info, *rest = run_batch(self.t, [
            WHO_AM_I,
            engine_command,
            *([] if self.observe else [["cat", self.state_rel]]),
            *[kind.find(names) for kind, names in kinds],
        ], timeout=60)
        lines = who.stdout.split()
        if not who.ok or len(lines) < 3 or not lines[0].isdigit():
            raise TargetError(f"cannot run commands on {self.t.description}: {who.first_error_line()}")
        self.uid, self.remote_now, self.home = int(lines[0]), int(lines[1]), lines[2]
        # (A transcript recorded before the machine's ID was asked for has three lines.)
        self.machine_id = lines[3] if len(lines) > 3 and lines[3] != "-" else None
        self.engine_source = self.facts.sources["engine"] = source(to_script(engine_command), info)
        self.runtime["run.started"] = "" if self.observe else str(self.remote_now)
        try:
            self.engine = self.facts.engine = PROBES["engine"].parse(info, engine_args)
            self.facts.gathered["engine"] = self.engine
        except ProbeError as exc:
            if self.lab.needs_docker:
                raise TargetError(f"Docker is not usable on {self.t.description}: {exc}",
                                  hint=docker_hint(f"{exc}\n{info.stderr}")) from None
            # A lab that checks the environment itself judges this in its claims.
            self.facts.problems["engine"] = f"{exc} ({docker_hint(f'{exc}{chr(10)}{info.stderr}')})"
            return
        self._check_student()
        if self.observe:  # the lab's names are the student's work here: look, change nothing
            return
        stale, answers = rest[0], rest[1:]
        try:
            found = {kind.key: kind.parse(res, names) for (kind, names), res in zip(kinds, answers)}
        except ResourceError as exc:
            raise TargetError(f"{exc} (on {self.t.description})") from None
        stale_run = _json_or_none(stale.stdout) if stale.ok else None
        self.stale_started = stale_run.get("started") if stale_run else None
        # (Only a name of ours is ever removed; a run before the state named it left one unknown.)
        named = str((stale_run or {}).get("workdir") or "")
        self.stale_workdir = named if re.fullmatch(re.escape(WORKDIR_PREFIX) + "[0-9a-f]{16}", named) else None
        assessment = assess(found, stale_run)
        if stale_run is not None:
            self._repair(assessment)
            for kind, name, _backup in assessment.restore:  # theirs again, and in the way again
                assessment.existing.setdefault(kind.key, []).append(name)
                assessment.foreign.append((kind, name))
            assessment.foreign = self._still_there(assessment.foreign)
        guarded = [(kind, name) for kind, name in assessment.foreign if not kind.removes]
        if guarded:
            kind = guarded[0][0]
            raise TargetError(kind.clash([name for k, name in guarded if k is kind]), hint=kind.clash_hint)
        foreign = sorted(assessment.foreign, key=lambda kn: kn[0].cleanup_order)
        if foreign and (not self.replace or assessment.blocking()):
            listing = ", ".join(f"{kind.noun} {name}" for kind, name in foreign)
            verb = f"already {'exists' if len(foreign) == 1 else 'exist'} on the target and " \
                   f"{'was' if len(foreign) == 1 else 'were'} not created by check-lab"
            clash = f"{listing} {verb}"
            if self.replace:
                stuck = ", ".join(f"{kind.noun} {name}" for kind, name in assessment.blocking())
                raise TargetError(f"{clash}; --replace cannot set aside {stuck} (Docker cannot rename it)",
                                  hint="remove or rename it yourself, then run again")
            raise TargetError(clash,
                              hint="remove or rename them, or run with --replace to set them aside during the check "
                                   "(they are put back afterwards)")
        self.existing = assessment.existing
        self.cleanup_armed = True
        for kind, name in foreign:
            self._move_aside(kind, name)
        pulls = self.plan.resources("pulls")
        self.pulled_by_us = [ref for ref in pulls if ref not in assessment.pulls_present
                             or ref in assessment.stale_pulls]
        self.facts.present_before = {ref for ref in pulls if ref not in self.pulled_by_us}

    def _still_there(self, found: list[tuple[Kind, str]]) -> list[tuple[Kind, str]]:
        """After an interrupted run's leftovers are gone: what only guards (a port) is asked again, since
        the leftovers may have held it."""
        again: dict[str, tuple[Kind, list[str]]] = {}
        for kind, name in found:
            if not kind.removes:
                again.setdefault(kind.key, (kind, []))[1].append(name)
        if not again:
            return found
        answers = run_batch(self.t, [kind.find(names) for kind, names in again.values()], timeout=60)
        try:
            still = {key: kind.parse(res, names) for (key, (kind, names)), res in zip(again.items(), answers)}
        except ResourceError as exc:
            raise TargetError(f"{exc} (on {self.t.description})") from None
        return [(kind, name) for kind, name in found if kind.removes or name in still[kind.key]]

    def _repair(self, assessment) -> None:
        """What an interrupted run left: its resources removed (in cleanup order: containers before their
        images), what it had set aside put back, its state file gone. One round trip, plus one per resource
        put back."""
        groups: dict[str, tuple[Kind, list[str]]] = {}
        for kind, name in assessment.leftovers:
            groups.setdefault(kind.key, (kind, []))[1].append(name)
        if assessment.stale_pulls:
            groups["pulls"] = (KINDS["pulls"], list(assessment.stale_pulls))
        ordered = sorted(groups.values(), key=lambda kn: kn[0].cleanup_order)
        since = float(self.stale_started) - 1 if self.stale_started is not None else None
        workdir = self.stale_workdir
        results = run_batch(self.t, [kind.remove(names, since) for kind, names in ordered]
                            + [shlex.join(["rm", "-f", self.state_rel])
                               + (f' && rm -rf "${{TMPDIR:-/tmp}}/{workdir}"' if workdir else "")], timeout=600)
        if workdir:
            self.notes.append(f"removed the work folder {workdir} of an interrupted check-lab run")
        for (kind, names), res in zip(ordered, results):
            gone = set(res.stdout.split())
            why = "pulled by" if kind.key == "pulls" else "left over by"
            for name in names:
                self.notes.append(f"removed {kind.noun} {name} ({why} an interrupted check-lab run)" if name in gone
                                  else f"could not remove {kind.noun} {name} left by an interrupted check-lab run: "
                                       f"{res.first_error_line() if res.stderr.strip() else 'it is in use'}")
        for kind, name, backup in assessment.restore:
            res = self.sh(kind.put_back(name, backup), timeout=60)
            self.notes.append(f"put your {kind.noun} {name} back (an interrupted check-lab run had set it aside)"
                              if res.ok else f"could not put your {kind.noun} {name} back from {backup}: "
                                             f"{res.first_error_line()}")

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

    def _move_aside(self, kind: Kind, name: str) -> None:
        backup = kind.backup_name(name)
        res = self.sh(kind.set_aside(name, backup), timeout=60)
        if not res.ok:
            raise TargetError(f"could not set {kind.noun} {name} aside: {res.first_error_line()}")
        self.moved.append((kind.key, name, backup))
        self.notes.append(f"set your {kind.noun} {name} aside as {backup} during the check")

    # -- upload

    def upload(self) -> None:
        """Record the run on the target, make the work folder, and upload the lab's files into it (SFTP)."""
        if self.observe:  # nothing is uploaded; the lab's files are what a student's COPY took, roughly
            self.facts.files_total = sum(len(self.plan.file_bytes(f)) for f in self.lab.files)
            return
        self.events.phase(f"uploading {len(self.lab.files)} lab file(s)")
        state = {"lab": self.lab.id, "started": self.remote_now, "pulled": self.pulled_by_us,
                 "moved": self.moved, "existing": self.existing, "by": f"{getpass.getuser()}@{socket.gethostname()}"}
        who = f"check-lab {self.lab.id} of {state['by']}, started {self.remote_now}"
        subdirs = sorted({str(Path(f.dest).parent) for f in self.lab.files if str(Path(f.dest).parent) != "."})
        # The work folder's name is chosen here, so that the run's state can name it: a run that dies leaves
        # it, and the next run removes it (mkdir fails where the name exists, as mktemp's would).
        state["workdir"] = f"{WORKDIR_PREFIX}{secrets.token_hex(8)}"
        record, made = run_batch(self.t, [
            f"mkdir -p {STATE_DIR} && printf '%s\\n' {shlex.quote(who)} > {STATE_DIR}/lock.info && "
            f"printf '%s\\n' {shlex.quote(json.dumps(state))} > {shlex.quote(self.state_rel)}",
            f'w="${{TMPDIR:-/tmp}}/{state["workdir"]}" && mkdir -m 700 "$w" && cd "$w" && '
            + (f"mkdir -p {quote(*subdirs)} && " if subdirs else "") + 'printf "%s\\n" "$w"',
        ], timeout=60)
        if not made.ok or not made.stdout.strip():
            self._disk_full('"${TMPDIR:-/tmp}"')
            raise TargetError(f"cannot make a work folder on the target: {made.first_error_line()}")
        self.workdir = made.stdout.strip()
        if not record.ok:
            self._disk_full(STATE_DIR)
            raise TargetError(f"cannot write ~/{self.state_rel} on the target: {record.first_error_line()}")
        import tempfile

        with tempfile.TemporaryDirectory(prefix="check-lab-upload-") as staging:
            pairs = []
            for f in self.lab.files:
                local = self.lab.folder / f.source
                data = self.plan.file_bytes(f)
                if data != local.read_bytes():  # a rendered copy (e.g. another base image), same mode
                    copy = Path(staging) / f.dest.replace("/", "_")
                    copy.write_bytes(data)
                    copy.chmod(local.stat().st_mode & 0o777)
                    local = copy
                pairs.append((local, f"{self.workdir}/{f.dest}"))
            try:
                self.t.put_files(pairs)
            except TargetError:
                self._disk_full(shlex.quote(self.workdir))
                raise
        self.facts.files_total = sum(len(self.plan.file_bytes(f)) for f in self.lab.files)

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
        if self.observe:
            self.observe_pass()
            return
        run_in_order(self.lab.steps, self.facts, self.events, lambda step: (self, step.title))

    def observe_pass(self, steps: list[Step] | None = None, missing: dict[str, str] | None = None) -> dict[str, str]:
        """Observe mode: every step that only looks (or its observe form), and every probe, in one round trip
        (they change nothing, so none waits for another); a step that would change the machine is `skipped`,
        its probes look at the state instead. `--watch` repeats this whenever the engine reports a change.

        Given `steps` (a lab over several machines: this machine's steps), it fills in their facts only, among
        the facts the caller made, and reports nothing; `missing` are values other machines did not find.
        Returns the values this machine did not find (name -> why)."""
        own = steps is None
        steps = self.lab.steps if own else steps
        facts = self.facts
        not_found = {**(missing or {}), **self._observe_captures(steps)}
        if own:
            facts.steps = {step.id: StepFact(step.id, step.title, self.display(step, observing=step.looks))
                           for step in steps}
            facts.forget_looks()
        commands: list[str] = []
        plan: list[tuple] = []
        for step in steps:
            lacking = facts.lacking(step.needs)
            if lacking:
                facts.steps[step.id].error = f"not applicable here: {lacking}"
            elif step.looks:
                # A form that reads a value observe mode could not find (no container of the student's
                # to read the log of) is not run: its claims are not judged, and say why.
                missing = _not_found_in(step.observe_run or step.run, not_found)
                if missing:
                    facts.steps[step.id].error = missing
                else:
                    plan.append(("step", step, None))
                    commands.append(self._wrapped(step, observing=True))
            for probe, pdef, args, command in self._probes(step):
                missing = _not_found_in(json.dumps(probe.args), not_found)
                if missing:
                    facts.problems[probe.name] = missing
                    facts.sources[probe.name] = source(None, None, step.id, missing)
                    continue
                if command is None:
                    facts.gathered[probe.name] = None
                    facts.sources[probe.name] = source(None, None, step.id, NOTHING_TO_ASK)
                    continue
                plan.append(("probe", probe, (pdef, args, command, step.id)))
                commands.append(command)
        timeout = max([self.timeout_for(s) for s in steps if s.looks] + [120.0]) * 2
        for (what, item, extra), res in zip(plan, run_batch(self.t, commands, timeout, read_only=True)):
            if what == "step":
                fact = facts.steps[item.id]
                fact.result = res
                self._judge_step(item, fact)
                if item.observe_run and fact.status != "passed":
                    # Its observe form could not look (no access, nothing there): no evidence, not a finding.
                    fact.status, fact.error = "skipped", f"its observe form failed: {fact.error}"
                    continue
                self._capture(item, fact)
            else:
                self._take_probe(item, *extra, res)
        if own:
            for i, step in enumerate(steps, 1):
                settle_observed(facts.steps[step.id])
                self.events.step_finished(i, len(steps), facts.steps[step.id])
        return not_found

    def _capture(self, step: Step, fact: StepFact) -> None:
        """The values the step's output gives later steps (`capture:`); one not found fails the step."""
        import re

        for name, pattern, _observe in step.captures:
            if pattern is None:  # a value only observe mode finds
                continue
            match = re.search(pattern, fact.result.stdout if fact.result else "", re.M)
            if match is None:
                if fact.status == "passed":
                    fact.status, fact.error = "failed", f"its output does not show the {name} later steps need"
                continue
            self.runtime[f"captured.{name}"] = match.group(1) if match.groups() else match.group(0)

    def _observe_captures(self, steps: list[Step]) -> dict[str, str]:
        """Observe mode: the values later steps need, found on the machine as the student left it. Returns
        those not found (or with no command to find them): name -> why."""
        not_found: dict[str, str] = {}
        wanted = []
        for step in steps:
            for name, _pattern, command in step.captures:
                if command:
                    wanted.append((name, self.plan.render(command, self.runtime)))
                elif not step.looks:  # (a step observe mode runs captures its values as it does otherwise)
                    not_found[name] = f"only step {step.id!r} gives it, and observe mode does not run it"
                    self.runtime[f"captured.{name}"] = ""
        results = run_batch(self.t, [command for _name, command in wanted], timeout=60) if wanted else []
        for (name, command), res in zip(wanted, results):
            value = res.stdout.strip().splitlines()[0].strip() if res.ok and res.stdout.strip() else ""
            self.runtime[f"captured.{name}"] = value
            if not value:
                not_found[name] = f"`{command}` found none on the machine"
        return not_found

    def _scope(self, step: Step) -> dict:
        """What the step's templates see: the run's values, and the step's own timeout (seconds, scaled by
        --timeout-factor), for a step that waits for something to become true within it."""
        return {**self.runtime, "step.timeout": str(int(self.timeout_for(step)))}

    def _wrapped(self, step: Step, *, observing: bool = False) -> str:
        script = self.plan.command(step, self._scope(step), observing=observing)
        if step.sudo:
            script = self.root_wrap(script)
        # In the run's work folder, which the lab's commands know as $LAB_DIR.
        cd = (f"cd {shlex.quote(self.workdir)} || exit 1\nexport LAB_DIR={shlex.quote(self.workdir)}\n"
              if self.workdir else "")
        return f"{cd}export DOCKER_CLI_HINTS=false\nset -e\n{script}"

    def _judge_step(self, step: Step, fact: StepFact) -> None:
        """A step's status from its result, and its output parsed."""
        result = fact.result
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

    def display(self, step: Step, *, observing: bool = False) -> str:
        command = redact(self.plan.command(step, self._scope(step), observing=observing))
        return f"sudo {command}" if step.sudo and "\n" not in command else command

    def _probes(self, step: Step):
        """The step's probes for this mode: (probe, its definition, its arguments, command or None)."""
        for probe in step.after:
            if (self.observe and not probe.observe) or (not self.observe and probe.observe == "only"):
                continue
            pdef = PROBES[probe.kind]
            args = self.plan.probe_args(probe, self.runtime)
            built = pdef.build(args, self.engine)
            if built is None:  # nothing to gather on this engine
                yield probe, pdef, args, None
                continue
            argv, needs_root = built
            command = shlex.join(argv)
            yield probe, pdef, args, self.root_wrap(command) if needs_root else command

    def _take_probe(self, probe, pdef, args, command: str, step_id: str, res: Result) -> None:
        self.facts.sources[probe.name] = source(command, res, step_id)
        if res.timed_out:
            self.facts.problems[probe.name] = "it gave no answer in time"
            return
        try:
            self.facts.gathered[probe.name] = pdef.parse(res, args)
        except ProbeError as exc:
            self.facts.problems[probe.name] = str(exc)

    def gather(self, step: Step) -> None:
        """The step's probes, all in one round trip."""
        planned = []
        for probe, pdef, args, command in self._probes(step):
            if command is None:
                self.facts.gathered[probe.name] = None
                self.facts.sources[probe.name] = source(None, None, step.id, NOTHING_TO_ASK)
            else:
                planned.append((probe, pdef, args, command))
        if not planned:
            return
        timeout = sum(pdef.timeout for _p, pdef, _a, _c in planned) * self.timeout_factor
        answers = run_batch(self.t, [c for *_x, c in planned], timeout, read_only=True)
        for (probe, pdef, args, command), res in zip(planned, answers):
            self._take_probe(probe, pdef, args, command, step.id, res)

    # -- cleanup

    def cleanup(self) -> None:
        """Remove what the run created, in one round trip (plus one per resource set aside with --replace)."""
        if not self.cleanup_armed:
            return
        self.events.phase("cleaning up what the check created")
        kinds = sorted(((kind, names) for kind, names in self._kinds() if kind.removes),
                       key=lambda kn: kn[0].cleanup_order)
        commands: dict[str, str] = {}
        for kind, names in kinds:
            names = self.pulled_by_us if kind.key == "pulls" else names
            commands[kind.key] = kind.remove(names, self.remote_now - 1) if names else "true"
        if self.engine is not None and self.engine.builder == "buildkit":
            commands["cache"] = _prune_build_cache(self.remote_now - 1)
        commands["files"] = shlex.join(["rm", "-rf", *([self.workdir] if self.workdir else []), self.state_rel])
        results = dict(zip(commands, run_batch(self.t, list(commands.values()), timeout=600)))
        for kind, _names in kinds:
            res = results[kind.key]
            if res.stdout.split():
                self.notes.append(f"removed {kind.what_removed} ({', '.join(res.stdout.split())})")
            if not res.ok:
                self.notes.append(f"could not remove all of {kind.what_removed}: {res.first_error_line()}")
        removed = results.get("cache")
        if removed is not None and removed.stdout.strip() not in ("", "0"):
            self.notes.append(f"removed {removed.stdout.strip()} build cache record(s) made by the lab's builds")
        for key, name, backup in reversed(self.moved):
            kind = KINDS[key]
            res = self.sh(kind.put_back(name, backup), timeout=60)
            self.notes.append(f"put your {kind.noun} {name} back" if res.ok else
                              f"could not put your {kind.noun} {name} back from {backup}: {res.first_error_line()}")

    # -- all of it

    def mark_the_engine(self) -> None:
        """Observe mode, after preflight: what will show after the run that it left the engine as it was. The
        engine's clock (its log lists every change after it), or where the engine keeps no such log, a hash of
        what it holds. (A watch, which never asks, marks nothing.)"""
        if not self.observe or self.engine is None:
            return
        self.changes_since = None if self.engine.podman else self.engine.clock
        if self.changes_since is None:
            res = self.sh(FINGERPRINT, timeout=60)
            self.fingerprint_before = res.stdout.strip() if res.ok else None

    def left_as_found(self) -> dict | None:
        """Observe mode, after the run: the changes the engine logged since it began (None: its log no longer
        reaches back), or the hash before and after; None where nothing was marked."""
        if self.changes_since is not None:
            probe, args = PROBES["engine_changes"], {"since": self.changes_since}
            try:
                changes = probe.parse(self.sh(probe.build(args, self.engine)[0], timeout=60), args)
            except ProbeError:
                changes = None
            return {"since": self.changes_since, "changes": changes}
        if self.fingerprint_before is not None:
            after = self.sh(FINGERPRINT, timeout=60)
            return {"before": self.fingerprint_before, "after": after.stdout.strip() if after.ok else None}
        return None

    def run(self) -> RunReport:
        report = RunReport(self.plan.info(), self.t.description,
                           datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=self.notes)
        started = time.monotonic()
        try:
            try:
                self.preflight()
                self.mark_the_engine()
                report.engine = self.facts.engine
                self.upload()
                self.run_steps()
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP turned into it (checker.cli)
                report.interrupted, report.signal = True, getattr(exc, "signal", "SIGINT")
            except TargetError as exc:
                if not self.cleanup_armed:
                    raise
                report.error = str(exc)
            finally:
                clean_up(self.cleanup, report)
            if self.observe and not report.error and not report.interrupted:
                report.fingerprint = self.left_as_found()
        finally:
            if self.close:
                self.t.close()
        report.target = self.t.description
        report.machine_id = self.machine_id
        return self.judge(report, started, getattr(self.t, "first_exec_at", None))

    def judge(self, report: RunReport, started: float, first_exec_at: float | None) -> RunReport:
        """The report's steps, claims and statements, from the facts the run gathered."""
        report.steps = [redacted(fact) for fact in self.facts.steps.values()]  # (the claims read them whole)
        report.sources = dict(self.facts.sources)
        report.lab = departures_run(report.lab, report.steps)
        born = process_started_at()
        if born is not None and first_exec_at is not None:
            report.timings["first_command_s"] = round(first_exec_at - born, 3)
        claims, statements = self.plan.judged(self.runtime)
        report.claims = checks.evaluate(claims, self.facts)
        report.statements = checks.evaluate(statements, self.facts)
        report.duration = time.monotonic() - started
        return report


def settle_observed(fact: StepFact) -> None:
    """Observe mode: a step that did not run is `skipped` (it would change the machine, or what it reads is
    not there)."""
    if fact.result is None:
        fact.status = "skipped"


class MachinesRunner:
    """A lab over several machines (the course's swarm): one Runner per machine, each with its own session,
    lock, work folder, guard of the lab's names and clean-up; the steps run in the lab's order, each on its
    machine (`on:`), and share one set of facts and captured values (the join token of `docker swarm init`
    reaches the workers' `join`). Preflight, upload and clean-up run on every machine at once."""

    def __init__(self, plan: Plan, transports: dict[str, Transport], *, events: Events | None = None,
                 **options):
        self.plan, self.lab = plan, plan.lab
        self.observe = bool(options.get("observe"))
        self.events = events or NoEvents()
        self.runners = {name: Runner(plan, t, events=self.events, **options) for name, t in transports.items()}
        first = next(iter(self.runners.values()))
        self.facts, self.runtime = first.facts, first.runtime
        for runner in self.runners.values():
            runner.facts, runner.runtime = self.facts, self.runtime
        self.default = self.lab.machines[0]

    @property
    def description(self) -> str:
        return "; ".join(f"{name}: {r.t.description}" for name, r in self.runners.items())

    def _each(self, action: str) -> None:
        """`action` on every machine at once; the first failure (in the lab's order of machines) is raised
        once all have finished."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(self.runners)) as pool:
            futures = {name: pool.submit(getattr(r, action)) for name, r in self.runners.items()}
        for name, future in futures.items():
            exc = future.exception()
            if isinstance(exc, TargetError):
                raise TargetError(f"{name}: {exc.message}", hint=exc.hint) from None
            if exc is not None:
                raise exc

    def _the_labs_engine(self) -> None:
        """The lab's facts (and so its report) name the engine of the lab's first machine: the machines'
        preflights ran at once, and each wrote its own engine there."""
        first = self.runners.get(self.default)
        if first is not None and first.engine is not None:
            self.facts.engine = self.facts.gathered["engine"] = first.engine
            self.facts.sources["engine"] = first.engine_source

    def run_steps(self) -> None:
        def where(step: Step) -> tuple[Runner, str]:
            machine = step.on or self.default
            return self.runners[machine], f"{step.title} (on {machine})"

        if self.observe:
            self.observe_pass(where)
            return
        run_in_order(self.lab.steps, self.facts, self.events, where)

    def observe_pass(self, where) -> None:
        """Observe mode: each machine looks at what its steps would show (Runner.observe_pass), one machine
        after the other, in the lab's order of machines; the values one finds reach the next."""
        steps, facts = self.lab.steps, self.facts
        facts.steps = {}
        for step in steps:
            runner, title = where(step)
            facts.steps[step.id] = StepFact(step.id, title, runner.display(step, observing=step.looks))
        facts.forget_looks()
        missing: dict[str, str] = {}
        for name, runner in self.runners.items():
            mine = [step for step in steps if (step.on or self.default) == name]
            missing.update(runner.observe_pass(mine, missing))
        for i, step in enumerate(steps, 1):
            settle_observed(facts.steps[step.id])
            self.events.step_finished(i, len(steps), facts.steps[step.id])

    def _fingerprints(self, report: RunReport) -> None:
        """Observe mode: whether every machine's engine was left as it was (one line per machine)."""
        report.fingerprint = combined_fingerprint({name: runner.left_as_found()
                                                   for name, runner in self.runners.items()})

    def _cleanup(self, report: RunReport) -> None:
        clean_up(lambda: self._each("cleanup"), report)
        for runner in self.runners.values():
            runner.cleanup_armed = False

    def run(self) -> RunReport:
        report = RunReport(self.plan.info(), self.description,
                           datetime.now(timezone.utc).isoformat(timespec="seconds"))
        started = time.monotonic()
        try:
            try:
                self._each("preflight")
            except BaseException:  # one machine cannot take the lab: the others are left as they were
                self._cleanup(report)
                raise
            self._the_labs_engine()
            self._each("mark_the_engine")
            report.engine = self.facts.engine
            try:
                self._each("upload")
                self.run_steps()
            except KeyboardInterrupt as exc:
                report.interrupted, report.signal = True, getattr(exc, "signal", "SIGINT")
            except TargetError as exc:
                report.error = str(exc)
            finally:
                self._cleanup(report)
            if self.observe and not report.error and not report.interrupted:
                self._fingerprints(report)
        finally:
            for runner in self.runners.values():
                runner.t.close()
        for name, runner in self.runners.items():
            report.notes += [f"{name}: {note}" for note in runner.notes]
        if any(r.machine_id for r in self.runners.values()):
            report.machine_id = ", ".join(f"{name}={r.machine_id or '-'}" for name, r in self.runners.items())
        firsts = [getattr(r.t, "first_exec_at", None) for r in self.runners.values()]
        first = min((f for f in firsts if f is not None), default=None)
        return next(iter(self.runners.values())).judge(report, started, first)


def run_in_order(steps, facts: Facts, events: Events, where) -> None:
    """The lab's steps in order, each run by the Runner `where(step)` names (with the step's title as
    reported), followed by its probes; a failed step stops the lab."""
    for step in steps:
        runner, title = where(step)
        facts.steps[step.id] = StepFact(step.id, title, runner.display(step))
    for i, step in enumerate(steps, 1):
        runner, _title = where(step)
        fact = facts.steps[step.id]
        fact.command = runner.display(step)  # with what the steps before it captured
        events.step_started(i, len(steps), fact.title, fact.command)
        lacking = facts.lacking(step.needs)
        if lacking:  # the engine cannot do it: not run, not a failure (its claims are not applicable either)
            fact.status, fact.error = "skipped", f"not applicable here: {lacking}"
            events.step_finished(i, len(steps), fact)
            continue
        fact.result = runner.sh(runner._wrapped(step), timeout=runner.timeout_for(step))
        runner._judge_step(step, fact)
        runner._capture(step, fact)
        runner.gather(step)
        events.step_finished(i, len(steps), fact)
        if fact.status != "passed":
            break


def clean_up(cleanup, report: RunReport) -> None:
    """`cleanup()`, with what stopped it (Ctrl-C, a target that failed) said in the report."""
    try:
        cleanup()
    except KeyboardInterrupt as exc:
        report.interrupted = True
        report.signal = report.signal or getattr(exc, "signal", "SIGINT")
        report.notes.append("cleanup was interrupted: run check-lab again to finish it")
    except TargetError as exc:
        report.notes.append(f"cleanup failed: {exc}")
        report.error = report.error or str(exc)


def _json_or_none(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


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
