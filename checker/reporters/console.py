"""The terminal report: a progress line while each step runs, then each step and each claim, coloured.
As a report format (`--report console:FILE`), the same text without colours."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from checker.exitcodes import result_word
from checker.records import LabInfo, RunReport, StepFact, TargetRun, left_unchanged

MARK = {"passed": ("✓", "green"), "failed": ("✗", "red"), "timed-out": ("⏱", "red"), "not-run": ("·", "dim"),
        "skipped": ("–", "dim")}
VERDICT = {"pass": ("✓", "green", "holds"), "fail": ("✗", "red", "FAILS"), "error": ("?", "yellow", "not judged"),
           "n/a": ("–", "blue", "not applicable here")}


def _quiet_on_closed_pipe(method):
    """Progress output must never stop a run (and its cleanup): `check-lab 07 | head` closes stdout."""

    def wrapper(self, *args, **kwargs):
        if self.closed_pipe:
            return None
        try:
            return method(self, *args, **kwargs)
        except BrokenPipeError:
            self.closed_pipe = True
            return None

    return wrapper


def _result_of(result: TargetRun) -> tuple[str, str]:
    if result.report is None:
        return "unreachable", "bold yellow"
    word = result_word(result.exit_code)
    return word.upper(), {"pass": "green", "fail": "red"}.get(word, "yellow")


class ConsoleReporter:
    """Implements the runner's Events (live progress) and renders the final report."""

    def __init__(self, console: Console | None = None, *, verbose: bool = False):
        self.console = console or Console(highlight=False)
        self.verbose = verbose
        self._status = None
        self.closed_pipe = False

    # -- progress (runner events)

    @_quiet_on_closed_pipe
    def header(self, title: str, target: str) -> None:
        self.console.print(Text.assemble(("check-lab ", "bold"), (title, "bold cyan"), "  on  ", (target, "cyan")))

    @_quiet_on_closed_pipe
    def phase(self, text: str) -> None:
        self._stop_status()
        if self.console.is_terminal:
            self._status = self.console.status(escape(text) + " …")
            self._status.start()
        elif self.verbose:
            self.console.print(f"  {escape(text)} …", style="dim")

    @_quiet_on_closed_pipe
    def step_started(self, index: int, total: int, title: str, command: str) -> None:
        self._stop_status()
        if self.console.is_terminal:
            first = command.splitlines()[0] if command else ""
            self._status = self.console.status(f"[{index}/{total}] {escape(title)}  [dim]{escape(first)}[/]")
            self._status.start()

    @_quiet_on_closed_pipe
    def step_finished(self, index: int, total: int, fact: StepFact) -> None:
        self._stop_status()
        self.print_step(fact, index, total)

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        self._stop_status()

    # -- rendering

    def print_step(self, fact: StepFact, index: int | None = None, total: int | None = None) -> None:
        mark, style = MARK.get(fact.status, ("?", "yellow"))
        seconds = f"{fact.result.duration:.1f}s" if fact.result else ""
        counter = f"{index}/{total} " if index else ""
        line = Text.assemble((f" {mark} ", style), (counter, "dim"), (fact.title, "bold" if fact.status != "passed"
                                                                         else ""), ("  " + seconds, "dim"))
        self.console.print(line)
        command_lines = fact.command.splitlines()
        for cl in command_lines[:6]:
            self.console.print(Text("     $ " + cl, style="dim"))
        if fact.status in ("failed", "timed-out") or self.verbose:
            output = ""
            if fact.result:
                output = (fact.result.stdout + ("\n" if fact.result.stdout and fact.result.stderr else "")
                          + fact.result.stderr)
            lines = [ln for ln in output.splitlines() if ln.strip()]
            shown = lines if self.verbose else lines[-8:]
            for ln in shown:
                self.console.print(Text("     │ " + ln[:300]))
            if fact.error and fact.status != "passed":
                self.console.print(Text(f"     {fact.error}", style=style))

    @_quiet_on_closed_pipe
    def target_done(self, result: TargetRun) -> None:
        """One target of many finished (called as they finish)."""
        word, style = _result_of(result)
        self.console.print(Text.assemble((f" {word:<11}", style), (result.label, "bold"),
                                         (f"  {result.seconds:.1f}s", "dim")))

    @_quiet_on_closed_pipe
    def render_many(self, results: list[TargetRun], exit_code: int, seconds: float, noun: str = "targets") -> None:
        c = self.console
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        first = {"labs": "lab", "students": "student"}.get(noun, "target")
        for column in (first, "result", "claims", "score", "text differs", "time", "why"):
            table.add_column(column, overflow="fold")
        for r in results:
            word, style = _result_of(r)
            if r.report is None:
                claims, score, differs, why = "–", "–", "–", r.error or ""
            else:
                held = sum(1 for cl in r.report.claims if cl.passed)
                points, max_points = r.report.score
                claims, score = f"{held}/{len(r.report.claims)}", f"{points:g}/{max_points:g}"
                differs = f"{len(r.report.differences)}/{len(r.report.statements)}" if r.report.statements else "–"
                why = r.report.error or ", ".join(cl.id for cl in r.report.claims if not cl.passed)
            label = r.label if r.report is None or noun != "labs" else f"{r.label} {r.report.lab.title}"
            table.add_row(Text(label, style="bold"), Text(word, style=style), claims, score, differs,
                          f"{r.seconds:.1f}s", why)
        c.print()
        c.print(table)
        passed = sum(1 for r in results if r.exit_code == 0)
        word = result_word(exit_code)
        c.print()
        c.print(Text(f" {word.upper()}: {passed}/{len(results)} {noun} pass · {seconds:.1f}s",
                     style={"pass": "bold green", "fail": "bold red"}.get(word, "bold yellow")))

    @_quiet_on_closed_pipe
    def render(self, report: RunReport, exit_code: int) -> None:
        self._stop_status()
        c = self.console
        if report.engine:
            e = report.engine
            c.print(Text(f" engine: {e.describe()}, data in {e.docker_root_dir}", style="dim"))
        not_run = [s for s in report.steps if s.status == "not-run"]
        if not_run:
            c.print(Text(f" {len(not_run)} step(s) not run: {', '.join(s.step_id for s in not_run)}", style="yellow"))
        c.print()
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
        table.add_column("", no_wrap=True)
        table.add_column("claim", no_wrap=True)
        table.add_column("observed / expected", overflow="fold")
        for claim in report.claims:
            mark, style, word = VERDICT[claim.verdict]
            body = Text()
            body.append(claim.observed)
            if claim.expected:
                body.append("\nexpected: " + claim.expected, style="dim")
            if claim.hint:
                body.append("\nhint: " + claim.hint, style="yellow")
            table.add_row(Text(mark, style=style), Text(claim.id, style=style), body)
        c.print(table)
        differences = report.differences
        if report.statements:
            c.print()
            if differences:
                c.print(Text(f" The lab's text vs this engine ({len(differences)} statement(s) do not hold as "
                             "written here; the claims above are checked in the form true on this engine):",
                             style="bold"))
                for st in differences:
                    c.print(Text.assemble(("  ≠ ", "magenta"), (st.title, ""), ("\n    here: ", "dim"),
                                          (st.observed, "magenta")))
            else:
                unjudged = [st for st in report.statements if st.verdict == "error"]
                elsewhere = [st for st in report.statements if st.verdict == "n/a"]
                if elsewhere:
                    c.print(Text(f" The lab's text: {', '.join(st.id for st in elsewhere)} not applicable here "
                                 f"({elsewhere[0].observed.removeprefix('not applicable here: ')}).", style="dim"))
                applies = len(report.statements) - len(elsewhere)
                if applies and not unjudged:
                    c.print(Text(" The lab's text holds as written on this engine.", style="dim"))
                elif len(unjudged) < applies:
                    c.print(Text(f" The lab's text holds as written here for the {applies - len(unjudged)}"
                                 f" sentence(s) judged ({', '.join(st.id for st in unjudged)}: not judged here).",
                                 style="dim"))
                elif unjudged:
                    c.print(Text(f" The lab's text was not judged here ({', '.join(st.id for st in unjudged)}).",
                                 style="dim"))
        departures = report.lab.departures
        if departures:
            c.print()
            c.print(Text(" Where this run departs from the course's text:", style="bold"))
            for d in departures:
                if d["kind"] == "departs":
                    course = d["course"].replace("\n", " ⏎ ")
                    c.print(Text.assemble(("  ≠ ", "cyan"), (f"{d['step']}: ", "bold"), (d["why"], ""),
                                          ("\n    the course: ", "dim"), (course, "dim")))
                elif d["kind"] == "addition":
                    what = d.get("step") or d.get("claim")
                    c.print(Text.assemble(("  + ", "cyan"), (f"{what} (an addition): ", "bold"), (d["why"], "")))
                else:
                    c.print(Text.assemble(("  ≠ ", "cyan"), (f"{d['here']}: ", "bold"), (d["why"], "")))
        if report.fingerprint:
            c.print(_left_as_found(report.fingerprint))
        for note in report.notes:
            c.print(Text(f" · {note}", style="dim"))
        if report.error:
            c.print(Text(f" target error: {report.error}", style="red"))
        held = sum(1 for cl in report.claims if cl.passed)
        points, max_points = report.score
        word = result_word(exit_code)
        style = {"pass": "bold green", "fail": "bold red"}.get(word, "bold yellow")
        applicable = sum(1 for cl in report.claims if cl.verdict != "n/a")
        elsewhere = len(report.claims) - applicable
        if applicable:
            summary = (f" {word.upper()}: {held}/{applicable} claims hold"
                       + (f" ({elsewhere} not applicable here)" if elsewhere else ""))
        else:
            summary = f" {word.upper()}: none of the {elsewhere} claims applies to this engine"
        summary += f" · score {points:g}/{max_points:g} · {report.duration:.1f}s"
        if report.interrupted:
            summary += " · interrupted"
        c.print()
        c.print(Text(summary, style=style))


# ------------------------------------------------------------------------------------------------ as a format


def _left_as_found(fp: dict) -> Text:
    """Observe mode: whether the engine was left as it was, by its own log of changes or by a hash."""
    someone = "the engine changed during the run (by someone else: observe mode runs nothing that changes it)"
    if "changes" in fp:
        changes = fp["changes"]
        if changes == []:
            return Text(" · observe mode changed nothing: the engine logged no change to its containers, images, "
                        "volumes or networks during the run", style="dim")
        if changes is None:
            return Text(" · whether the engine changed during the run is not known: its log of the last "
                        "events no longer reached back to the run's start", style="yellow")
        more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
        return Text(f" · {someone}: {', '.join(changes[:5])}{more}", style="yellow")
    if left_unchanged(fp):
        return Text(f" · observe mode changed nothing: the engine's containers, images, volumes and networks "
                    f"hash to {fp['before'][:16]}… before and after", style="dim")
    return Text(f" · {someone}: {fp['before'][:16]}… before, {(fp['after'] or '?')[:16]}… after", style="yellow")


def _plain() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=120, no_color=True, highlight=False, force_terminal=False, emoji=False), buf


def render(report: RunReport, exit_code: int) -> str:
    console, buf = _plain()
    reporter = ConsoleReporter(console)
    reporter.header(report.lab.name, report.target)
    for i, fact in enumerate(report.steps, 1):
        reporter.print_step(fact, i, len(report.steps))
    reporter.render(report, exit_code)
    return buf.getvalue()


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    console, buf = _plain()
    reporter = ConsoleReporter(console)
    noun = "labs" if kind == "course" else "targets"
    reporter.header(lab.name, f"{len(runs)} {noun}")
    seconds = sum(r.seconds for r in runs) if kind == "course" else max((r.seconds for r in runs), default=0.0)
    reporter.render_many(runs, exit_code, seconds, noun=noun)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ --watch


class WatchView:
    """The live checklist of `--watch`: each claim ticked as it holds, the next step of the lab, and the hint
    of a claim that went wrong. On a terminal it redraws in place (rich Live); otherwise it prints a line
    per change."""

    def __init__(self, console: Console):
        self.console = console
        self.live = None
        self.shown: dict[str, str] = {}
        self.last_next: str | None = None
        self.lab = ""

    def watching(self, lab_name: str, target: str) -> None:
        self.lab = lab_name
        self.console.print(Text.assemble(("check-lab ", "bold"), (lab_name, "bold cyan"), " (watching) on ",
                                         (target, "cyan")))
        self.console.print(Text(" do the lab in your own terminal (vagrant ssh); Ctrl-C when you are done",
                                style="dim"))
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(Text(""), console=self.console, refresh_per_second=8, transient=False)
            self.live.start()
        if getattr(self, "latest", None):
            self.update(*self.latest)

    def _mark(self, cid: str, state, reached: set[str]) -> tuple[str, str, str]:
        if state.ticked:
            return "✓", "green", "holds"
        if state.settled:
            return "–", "dim", "not applicable here"
        if state.latest is not None and cid in reached:
            return "✗", "red", "does not hold (yet)"
        return "·", "dim", "waiting"

    def update(self, states, titles, next_step, reached, seconds) -> None:
        self.latest = (states, titles, next_step, reached, seconds)
        if not self.lab:
            return  # the first look: shown once watching() has said what is watched
        if self.live is not None:
            table = Table(box=None, show_header=False, pad_edge=False)
            table.add_column(no_wrap=True)
            table.add_column()
            for cid, state in states.items():
                mark, style, _word = self._mark(cid, state, reached)
                body = Text(titles[cid], style="" if mark != "·" else "dim")
                if mark == "✗" and state.latest.hint:
                    body.append(f"\n  {state.latest.observed}\n  hint: {state.latest.hint}", style="yellow")
                table.add_row(Text(f" {mark}", style=style), body)
            footer = Text(f"\n next: {next_step}" if next_step else "\n every claim holds", style="bold")
            footer.append(f"   ({seconds:.0f}s)", style="dim")
            from rich.console import Group

            self.live.update(Group(table, footer))
            return
        for cid, state in states.items():
            mark, _style, word = self._mark(cid, state, reached)
            if self.shown.get(cid) != mark and not (mark == "·" and cid not in self.shown):
                detail = f" – {state.latest.observed}" if mark == "✗" else ""
                self.console.print(f" {mark} {cid} {word} ({seconds:.1f}s){detail}")
            self.shown[cid] = mark
        if next_step != self.last_next and next_step:
            self.console.print(Text(f"   next: {next_step.splitlines()[0]}", style="dim"))
        self.last_next = next_step

    @_quiet_on_closed_pipe
    def note(self, text: str) -> None:
        self.console.print(Text(f" · {text}", style="yellow"))

    closed_pipe = False

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
