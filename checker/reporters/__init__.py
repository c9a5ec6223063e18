"""The registry of report formats (as goss's outputs): `--report FORMAT:FILE`, FILE `-` for standard output.

Each format is one module here, depending only on the records (checker/records.py), with

    def render(report: RunReport, exit_code: int) -> str               # one run on one target
    def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind) -> str  # --targets, course

and one line in REPORTERS (its module, and a few words for the help text). A format with more than one output
(GitHub's summary and annotations) also has `deliver(request, text, reports, stdout_taken)`. The exit code is decided once (checker.exitcodes) and handed to every
format; none of them decides it. Modules are imported only when their format is written.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from checker.errors import UsageError

REPORTERS: dict[str, tuple[str, str]] = {
    "console": ("checker.reporters.console", "what the terminal shows, as plain text"),
    "json": ("checker.reporters.json_report", "the versioned JSON report (checker/schemas/report.schema.json)"),
    "junit": ("checker.reporters.junit", "JUnit XML, a test case per claim and per step"),
    "tap": ("checker.reporters.tap", "TAP version 13, a test point per claim"),
    "gradescope": ("checker.reporters.gradescope", "Gradescope's autograder results.json, a test per claim"),
    "roster": ("checker.reporters.roster", "the class roster as JSON: a students × claims matrix, each student's "
                                           "score and the claims that did not hold with their hints"),
    "csv": ("checker.reporters.csv_report", "the class roster as CSV: a row per student, a column per claim"),
    "html": ("checker.reporters.html_roster", "the class roster as one self-contained HTML page, sortable by "
                                              "student and claim, each student's failed claims with their hints"),
    "github": ("checker.reporters.github", "a GitHub Actions job summary in Markdown (to $GITHUB_STEP_SUMMARY "
                                           "when it is set), an annotation per failed claim"),
}


@dataclass(frozen=True)
class ReportRequest:
    format: str
    destination: str  # a file name, or "-" for standard output
    sign: object = field(default=None, compare=False)  # the grader's private key (--sign): JSON is signed

    def write(self, text: str) -> None:
        if self.destination == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            atomic_write(Path(self.destination).expanduser(), text)


def module(fmt: str):
    return importlib.import_module(REPORTERS[fmt][0])


def parse_request(value: str, flag: str = "--report") -> ReportRequest:
    """`FORMAT:FILE` (or `FORMAT` alone: standard output), checked before anything runs."""
    fmt, sep, dest = value.partition(":")
    if fmt not in REPORTERS:
        raise UsageError(f"{flag} {value}: unknown format {fmt!r} (formats: {', '.join(REPORTERS)})")
    dest = dest if sep else "-"
    if not dest:
        raise UsageError(f"{flag} {value}: give a file name after the colon (or - for standard output)")
    if dest != "-":
        path = Path(dest).expanduser()
        if path.is_dir():
            raise UsageError(f"{flag} {value}: {dest} is a folder, give a file name")
        if not path.parent.resolve().is_dir():
            raise UsageError(f"{flag} {value}: folder {path.parent} does not exist")
    return ReportRequest(fmt, dest)


def help_text() -> str:
    return "; ".join(f"{name}: {what}" for name, (_module, what) in REPORTERS.items())


def on_stdout(request: ReportRequest) -> bool:
    """Whether this report is written to standard output (the GitHub summary goes to its own file in a
    workflow)."""
    if request.destination != "-":
        return False
    return not (request.format == "github" and os.environ.get("GITHUB_STEP_SUMMARY"))


def _deliver(requests: list[ReportRequest], request: ReportRequest, text: str, reports) -> None:
    if request.sign is not None:
        from checker.signing import sign_text

        text = sign_text(text, request.sign)
    mod = module(request.format)
    if hasattr(mod, "deliver"):  # a format with more than one output (GitHub: summary and annotations)
        taken = any(on_stdout(r) for r in requests if r is not request)
        mod.deliver(request, text, reports, taken)
    else:
        request.write(text)


def write_single(requests: list[ReportRequest], report, exit_code: int) -> None:
    for request in requests:
        _deliver(requests, request, module(request.format).render(report, exit_code), [(None, report)])


def write_many(requests: list[ReportRequest], lab, runs, exit_code: int, kind: str = "targets") -> None:
    reports = [(r.label, r.report) for r in runs if r.report is not None]
    for request in requests:
        _deliver(requests, request, module(request.format).render_many(lab, runs, exit_code, kind), reports)


def atomic_write(path: Path, text: str) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
