"""`check-lab LAB --watch`: the student types the lab in their own terminal; the checker watches.

It follows the engine's event stream (`docker events`) over a channel of its own and, whenever the engine
reports a change (debounced), looks again the way observe mode does (every step that only looks, every
probe, one round trip), and judges every claim on what it sees. A claim is ticked the moment it holds and
stays ticked (its evidence may go later: `--rm` removes the containers whose sizes it measured); a claim
that does not hold keeps the last verdict judged on real evidence. It changes nothing on the machine and
holds no lock. It ends when every claim holds, on Ctrl-C (then it judges what it has seen), or after
`--watch-timeout` seconds, and writes the same reports as any run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from checker import checks
from checker.errors import TargetError
from checker.lab import Plan
from checker.records import FAIL, NOT_APPLICABLE, NOT_JUDGED, PASS, ClaimResult, RunReport, departures_run
from checker.runner import NoEvents, Runner
from checker.transport import process_started_at

EVENTS = "docker events --format '{{json .}}'"


@dataclass
class ClaimState:
    """A claim as the watch has seen it so far."""

    latest: ClaimResult | None = None  # the latest verdict judged on evidence (pass or fail)
    waiting: ClaimResult | None = None  # the latest "not judged", with its reason
    ticked_at: float | None = None  # when it first held (seconds since the watch started): then it stays

    @property
    def final(self) -> ClaimResult | None:
        return self.latest or self.waiting

    @property
    def ticked(self) -> bool:
        return self.ticked_at is not None

    @property
    def settled(self) -> bool:
        """Nothing more to wait for: it held, or it is not applicable on this engine (which does not change
        while the student types)."""
        return self.ticked or (self.latest is not None and self.latest.verdict == NOT_APPLICABLE)


class View(Protocol):
    def watching(self, lab_name: str, target: str) -> None: ...

    def update(self, states: dict[str, ClaimState], titles: dict[str, str], next_step: str | None,
               reached: set[str], seconds: float) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


class Watch:
    def __init__(self, plan: Plan, transport, view: View, *, timeout: float | None = None, settle: float = 0.25,
                 reconnect_for: float = 30.0, student: str | None = None):
        self.plan, self.t, self.view = plan, transport, view
        self.timeout, self.settle, self.reconnect_for = timeout, settle, reconnect_for
        self.runner = Runner(plan, transport, events=NoEvents(), observe=True, student=student)
        self.states = {spec.id: ClaimState() for spec in plan.claims}
        self.titles = {spec.id: spec.title for spec in plan.claims}
        self.action_of = claim_steps(plan)
        self.started = 0.0
        self.passes = 0

    # -- judging

    def look(self) -> None:
        """One look at the machine (observe mode's, one round trip), then every claim judged on it."""
        self.runner.observe_pass()
        self.passes += 1
        now = time.monotonic() - self.started
        for result in checks.evaluate(self.plan.judged(self.runner.runtime)[0], self.runner.facts):
            state = self.states[result.id]
            if state.ticked:
                continue
            if result.verdict == PASS:
                state.latest, state.ticked_at = result, round(now, 3)
            elif result.verdict in (FAIL, NOT_APPLICABLE):
                state.latest = result
            else:
                state.waiting = result
        self.view.update(self.states, self.titles, self.next_step(), self.reached(), now)

    def next_step(self) -> str | None:
        """What the student does next: the lab's step that gives the evidence of the earliest claim not yet
        ticked (the command as the course prints it)."""
        pending = [cid for cid, st in self.states.items() if not st.settled]
        if not pending:
            return None
        steps = self.plan.lab.steps
        index = min(self.action_of.get(cid, 0) for cid in pending)
        step = steps[index]
        return f"{step.title}: {(step.course or self.plan.command(step)).strip()}"

    def reached(self) -> set[str]:
        """The claims whose step the student has reached (a verdict of the others is not shown yet)."""
        pending = [self.action_of.get(cid, 0) for cid, st in self.states.items() if not st.settled]
        frontier = min(pending) if pending else len(self.plan.lab.steps)
        return {cid for cid in self.states if self.action_of.get(cid, 0) <= frontier}

    # -- following the engine

    def _open_stream(self):
        return self.t.open_stream(EVENTS)

    def _resume(self, why: str):
        """The event stream ended (the engine restarted, or the connection dropped): open it again while the
        machine allows, up to reconnect_for seconds; a one-line TargetError if it does not come back."""
        self.view.note(f"lost the engine's events ({why}); waiting for the machine to answer again")
        deadline = time.monotonic() + self.reconnect_for
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = self.t.run("docker info --format '{{.ServerVersion}}'", timeout=10)
                if answer.ok and answer.stdout.strip():
                    stream = self._open_stream()
                    self.view.note("the engine answers again: watching on")
                    return stream
                last = answer.first_error_line()
            except TargetError as exc:
                last = str(exc)
                try:
                    if hasattr(self.t, "reconnect"):
                        self.t.reconnect()
                except TargetError as again:
                    last = str(again)
            time.sleep(1.0)
        raise TargetError(f"the watch lost the machine: {last}",
                          hint="is the VM up and its Docker engine running? then run check-lab --watch again")

    def run(self) -> RunReport:
        info = self.plan.info()
        report = RunReport(info, self.t.description, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           notes=self.runner.notes)
        self.started = time.monotonic()
        report.timings["watch_started_at"] = round(time.time(), 3)  # ticked.* are seconds after it
        stream = None
        ended_by = "every claim holds"
        try:
            self.runner.preflight()
            report.engine = self.runner.facts.engine
            try:
                stream = self._open_stream()
                self.look()
            except TargetError as exc:
                stream = self._resume(exc.message)
                self.look()
            self.view.watching(info.name, self.t.description)  # once the first look is done
            while not all(st.settled for st in self.states.values()):
                if self.timeout is not None and time.monotonic() - self.started >= self.timeout:
                    ended_by = f"--watch-timeout ({self.timeout:g}s)"
                    break
                try:
                    lines = stream.read(1.0)
                    if lines is None:
                        raise TargetError("docker events stopped")
                    if not lines:
                        continue
                    # A burst of events (a build, five `docker run`): look once it settles (at most 1 s on).
                    burst_end = time.monotonic() + 1.0
                    while time.monotonic() < burst_end:
                        more = stream.read(self.settle)
                        if not more:
                            break
                    self.look()
                except TargetError as exc:
                    # The engine restarted, or the connection dropped: resume where the machine allows.
                    stream.close()
                    stream = self._resume(exc.message)
                    self.look()
        except KeyboardInterrupt as exc:
            name = getattr(exc, "signal", "SIGINT")
            if name == "SIGINT":
                # The student's way to say they are done: judge what was seen, and the machine as it is now.
                ended_by = "Ctrl-C" + self._last_look(stream)
            else:
                report.interrupted, report.signal = True, name
        except TargetError as exc:
            report.error, ended_by = str(exc), "the machine was lost"
        finally:
            if stream is not None:
                stream.close()
            self.view.close()
            self.t.close()
        report.target = self.t.description
        report.steps = list(self.runner.facts.steps.values())
        report.lab = departures_run(report.lab, report.steps)
        report.claims = [self._final(spec) for spec in self.plan.claims]
        report.statements = checks.evaluate(self.plan.judged(self.runner.runtime)[1], self.runner.facts)
        report.duration = time.monotonic() - self.started
        na = sum(1 for st in self.states.values() if st.settled and not st.ticked)
        if ended_by == "every claim holds" and na:
            ended_by += f" ({na} not applicable here)"
        report.notes.append(f"watched for {report.duration:.0f}s ({self.passes} look(s)); ended: {ended_by}")
        born, first = process_started_at(), getattr(self.t, "first_exec_at", None)
        if born is not None and first is not None:
            report.timings["first_command_s"] = round(first - born, 3)
        report.timings.update({f"ticked.{cid}": st.ticked_at for cid, st in self.states.items() if st.ticked})
        return report

    def _last_look(self, stream) -> str:
        """At Ctrl-C, one more look: the engine's state can trail its events (a container's `die` is
        reported before every listing shows it stopped), and the student's last command may have ended after
        the last look. A second Ctrl-C, or a machine that does not answer, skips it."""
        if stream is None:
            return ""
        try:
            self.look()
        except KeyboardInterrupt:
            return " (a second Ctrl-C: no last look)"
        except TargetError as exc:
            return f" (no last look: {exc.message})"
        return " and a last look"

    def _final(self, spec) -> ClaimResult:
        state = self.states[spec.id]
        if state.final is not None:
            result = state.final
            if state.ticked:
                result.details = {**result.details, "ticked_after_s": state.ticked_at}
            return result
        return ClaimResult(spec.id, spec.title, NOT_JUDGED, "", "not judged: the watch ended before its evidence",
                           spec.hint, {}, 0.0, spec.points)


def claim_steps(plan: Plan) -> dict[str, int]:
    """For each claim, the lab's step (by index) whose action gives its evidence: the latest step among those
    that produce the facts it reads, taken back to the nearest step that changes the machine (its evidence
    is looked at by the read-only steps after it)."""
    lab = plan.lab
    producer: dict[str, int] = {}
    for i, step in enumerate(lab.steps):
        producer[step.id] = i
        for probe in step.after:
            producer[probe.name] = i
    out = {}
    for spec in plan.claims:
        chk = checks.registry()[spec.check]
        # The facts it reads: its refs; a check that reads its own `with:` (the matcher, table_rows) names
        # them there. (Options that name further facts, e.g. the event log, are second sources.)
        names: list[str] = [spec.args.get(k, default) for k, default in chk.refs.items()]
        if chk.validate is not None:
            names += [v.split(".")[0].split("[")[0] for v in spec.args.values() if isinstance(v, str)]
        indexes = [producer[n] for n in names if isinstance(n, str) and n in producer]
        index = max(indexes) if indexes else 0
        while index > 0 and lab.steps[index].observe:
            index -= 1
        out[spec.id] = index
    return out
