"""The registry of report formats (as goss's outputs): `--report FORMAT:FILE`, FILE `-` for standard output.

Each format is one module here, depending only on the records (checker/records.py), with

    def render(report: RunReport, exit_code: int) -> str               # one run on one target
    def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind) -> str  # --targets, course

and one line in REPORTERS (its module, and a few words for the help text). The exit code is decided once (checker.exitcodes) and handed to every
format; none of them decides it. Modules are imported only when their format is written.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from checker.errors import UsageError

REPORTERS: dict[str, tuple[str, str]] = {
    "console": ("checker.reporters.console", "what the terminal shows, as plain text"),
    "json": ("checker.reporters.json_report", "the versioned JSON report (checker/schemas/report.schema.json)"),
    "junit": ("checker.reporters.junit", "JUnit XML, a test case per claim and per step"),
}


@dataclass(frozen=True)
class ReportRequest:
    format: str
    destination: str  # a file name, or "-" for standard output

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


def write_single(requests: list[ReportRequest], report, exit_code: int) -> None:
    for request in requests:
        request.write(module(request.format).render(report, exit_code))


def write_many(requests: list[ReportRequest], lab, runs, exit_code: int, kind: str = "targets") -> None:
    for request in requests:
        request.write(module(request.format).render_many(lab, runs, exit_code, kind))


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
