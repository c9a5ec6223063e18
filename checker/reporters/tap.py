"""TAP, the Test Anything Protocol, version 13 (`--report tap:FILE`): one test point per claim, with a YAML
block of what was expected, what was observed and the hint when it does not hold; a claim not applicable
here is a `# SKIP` with the reason."""

from __future__ import annotations

import yaml

from checker.records import FAIL, NOT_APPLICABLE, NOT_JUDGED, VERDICT_WORDS, LabInfo, RunReport, TargetRun


def _description(text: str) -> str:
    """A test point's description on one line; `#` would start a directive, so it is escaped."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("#", "\\#")


def _diagnostics(fields: dict) -> list[str]:
    block = yaml.safe_dump({k: v for k, v in fields.items() if v not in (None, "")}, sort_keys=False,
                           allow_unicode=True, width=100).rstrip("\n")
    return ["  ---", *("  " + line for line in block.splitlines()), "  ..."]


def _points(report: RunReport, label: str | None) -> list[list[str]]:
    where = f"[{label}] " if label else ""
    points = []
    for c in report.claims:
        name = _description(f"{where}{c.title} ({c.id})")
        if c.verdict == NOT_APPLICABLE:
            points.append([f"ok - {name} # SKIP {_description(c.observed)}"])
            continue
        if c.verdict not in (FAIL, NOT_JUDGED):
            points.append([f"ok - {name}"])
            continue
        points.append([f"not ok - {name}", *_diagnostics({
            "verdict": VERDICT_WORDS[c.verdict], "claim": c.id, "expected": c.expected, "observed": c.observed,
            "hint": c.hint, "points": f"{c.points:g}/{c.max_points:g}"})])
    return points


def _header(report: RunReport, label: str | None = None) -> list[str]:
    points, max_points = report.score
    where = f"[{label}] " if label else ""
    return [f"# {where}check-lab {report.lab.id} – {report.lab.title} on {report.target}: "
            f"{points:g} of {max_points:g} points"]


def _stream(header: list[str], points: list[list[str]], footer: list[str]) -> str:
    lines = ["TAP version 13", f"1..{len(points)}", *header]
    for number, (first, *rest) in enumerate(points, 1):
        status, _sep, text = first.partition(" - ")
        lines.append(f"{status} {number} - {text}")
        lines += rest
    return "\n".join(lines + footer) + "\n"


def render(report: RunReport, exit_code: int) -> str:
    footer = [f"# {report.error}"] if report.error else []
    return _stream(_header(report), _points(report, None), footer + [f"# exit code {exit_code}"])


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    """One stream for many targets (or labs): each target's claims, labelled; a target that could not be
    checked is one failed test point."""
    header, points = [], []
    for r in runs:
        if r.report is None:
            points.append([f"not ok - {_description(f'[{r.label}] checked')}",
                           *_diagnostics({"target": r.spec, "error": r.error or "unreachable"})])
            continue
        header += _header(r.report, r.label)
        points += _points(r.report, r.label)
    return _stream(header, points, [f"# exit code {exit_code}"])
