"""`check-lab course`: the course's labs in order on one machine, over one SSH connection, each lab leaving
the machine as it found it; one table of the course (lab × claims, the lab's text that differs here, time)
and reports that hold every lab. With `--targets FILE` (one target per engine), the course on every target
at once: its JSON report (kind `engines`) is what `check-lab drift` turns into the lab × engine table.

    check-lab course [--labs 02-06,08] [--target SPEC] [--report FORMAT:FILE] ...
    check-lab course --targets ENGINES.txt [--labs 07] --report json:- | check-lab drift -
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

from checker.errors import CheckLabError, UsageError
from checker.exitcodes import ExitStatus, for_run, for_targets
from checker.records import LabInfo, TargetRun

COURSE = LabInfo("course", "the course's labs", "")


def select(labs: list, spec: str | None) -> list:
    """`02-06,08`: the labs whose ids fall in those ranges (all of them without a selection)."""
    if not spec:
        return labs
    wanted: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise UsageError(f"--labs {spec!r}: {part!r} is not a lab id or a range (e.g. 02-06,08)")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if hi < lo:
            raise UsageError(f"--labs {spec!r}: the range {part!r} runs backwards")
        wanted |= set(range(lo, hi + 1))
    chosen = [lab for lab in labs if lab.id.isdigit() and int(lab.id) in wanted]
    known = {int(lab.id) for lab in labs if lab.id.isdigit()}
    unknown = sorted(wanted - known)
    if unknown:
        raise UsageError(f"--labs {spec!r}: no lab {', '.join(f'{n:02d}' for n in unknown)} "
                         f"(labs: {', '.join(lab.id for lab in labs)})")
    return chosen


def split_sets(labs: list, sets: dict[str, str]) -> dict[str, dict[str, str]]:
    """`--set KEY=VALUE` for the course: each lab gets the keys it has; a key no lab has is a mistake."""
    unknown = sorted(key for key in sets if not any(key in lab.variables for lab in labs))
    if unknown:
        raise UsageError(f"--set {unknown[0]}: none of these labs has a variable {unknown[0]!r}")
    return {lab.id: {k: v for k, v in sets.items() if k in lab.variables} for lab in labs}


def run_course(labs: list, transport, runner_options: dict, on_done: Callable[[TargetRun], None],
               on_start: Callable[[object], None] | None = None,
               sets: dict[str, dict[str, str]] | None = None) -> list[TargetRun]:
    """Each lab in turn over the same transport (closed at the end). Labs that need machines other than
    the docker-vm are for `check-lab LAB` on their own: the caller leaves them out (see `Lab.on_one_machine`).
    A lab that needs a value nobody gave (`--set user=…`) is not run, and says so; the others are."""
    from checker.exitcodes import ExitStatus
    from checker.lab import Plan
    from checker.runner import Runner

    results: list[TargetRun] = []
    try:
        for lab in labs:
            started = time.monotonic()
            try:
                values = lab.values((sets or {}).get(lab.id))
            except UsageError as exc:
                result = TargetRun(lab.id, transport.description, None, f"not run: {exc.message}",
                                   ExitStatus.USAGE, 0.0)
                results.append(result)
                on_done(result)
                continue
            if on_start is not None:
                on_start(lab)
            plan = Plan(lab, values, student=runner_options.get("student"))
            report = Runner(plan, transport, close=False, **runner_options).run()
            result = TargetRun(lab.id, report.target, report, report.error, for_run(report), time.monotonic() - started)
            results.append(result)
            on_done(result)
            if report.interrupted:
                break
    finally:
        transport.close()
    return results


@dataclass
class EngineCourse:
    """The course on one target of many (one engine): each lab's run, or why the target could not be used."""

    label: str
    spec: str
    runs: list[TargetRun]
    error: str | None
    seconds: float

    @property
    def exit_code(self) -> ExitStatus:
        return ExitStatus.TARGET if self.error else for_targets(r.exit_code for r in self.runs)


def course_on_targets(labs: list, entries: list, jobs: int, runner_options: dict,
                      sets: dict[str, dict[str, str]] | None,
                      on_done: Callable[[EngineCourse], None]) -> list[EngineCourse]:
    """The course on every target (`jobs` at a time), each over its own connection; results in the order of
    the targets file."""
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def one(entry) -> EngineCourse:
        started = time.monotonic()
        try:
            runs = run_course(labs, entry.open(), runner_options, lambda _run: None, sets=sets)
            result = EngineCourse(entry.label, entry.spec, runs, None, time.monotonic() - started)
        except CheckLabError as exc:
            result = EngineCourse(entry.label, entry.spec, [], str(exc), time.monotonic() - started)
        with lock:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="check-lab-engine") as pool:
        return list(pool.map(one, entries))
