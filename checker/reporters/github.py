"""A GitHub Actions job summary (`--report github`): the claims as a Markdown table, appended to the file
`$GITHUB_STEP_SUMMARY` names when the report goes to standard output inside a workflow (else written where
asked), and one error annotation per claim that does not hold or could not be judged, printed as GitHub's
workflow commands (`::error title=…::…`) when the run is inside GitHub Actions.
"""

from __future__ import annotations

import os
import sys

from checker.records import FAIL, NOT_APPLICABLE, NOT_JUDGED, PASS, VERDICT_WORDS, LabInfo, RunReport, TargetRun

MARKS = {PASS: "✅", FAIL: "❌", NOT_JUDGED: "⚠️", NOT_APPLICABLE: "➖"}


def cell(text: str) -> str:
    """Text for one cell of a Markdown table: one line, its pipes escaped, HTML's specials as entities."""
    text = " ".join(str(text).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _section(report: RunReport, exit_code: int, label: str | None = None) -> list[str]:
    points, max_points = report.score
    counts = report.counts()
    state = "passed" if exit_code == 0 else "did not pass"
    where = f"{label}: " if label else ""
    lines = [f"### {where}check-lab {cell(report.lab.id)} – {cell(report.lab.title)} {state}", "",
             f"{points:g} of {max_points:g} points · {counts[PASS]} hold, {counts[FAIL]} fail, "
             f"{counts[NOT_JUDGED]} not judged, {counts[NOT_APPLICABLE]} not applicable here · "
             f"target `{cell(report.target)}`" + (f" · Docker {cell(report.engine.server_version)}" if report.engine
                                                  else ""), ""]
    if report.error:
        lines += [f"**The run stopped:** {cell(report.error)}", ""]
    lines += ["| | claim | verdict | observed | hint |", "|---|---|---|---|---|"]
    for c in report.claims:
        hint = c.hint if c.verdict in (FAIL, NOT_JUDGED) else ""
        lines.append(f"| {MARKS[c.verdict]} | {cell(c.title)} (`{cell(c.id)}`) | {VERDICT_WORDS[c.verdict]} | "
                     f"{cell(c.observed)} | {cell(hint)} |")
    lines.append("")
    if report.differences:
        lines += ["<details><summary>The lab's text against this engine</summary>", ""]
        lines += [f"- {cell(st.title)} – here: {cell(st.observed)}" for st in report.differences]
        lines += ["", "</details>", ""]
    if report.lab.departures:
        lines += ["<details><summary>Where this run departs from the course's text</summary>", ""]
        lines += [f"- {cell(d.get('step') or d.get('claim') or d.get('here'))}: {cell(d['why'])}"
                  for d in report.lab.departures]
        lines += ["", "</details>", ""]
    return lines


def render(report: RunReport, exit_code: int) -> str:
    return "\n".join(_section(report, exit_code)) + "\n"


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    lines = [f"## check-lab {cell(lab.id if kind != 'course' else 'course')}: "
             f"{sum(1 for r in runs if r.exit_code == 0)} of {len(runs)} {'labs' if kind == 'course' else 'targets'} "
             "passed", "", "| | " + ("lab" if kind == "course" else "target") + " | points | result |",
             "|---|---|---|---|"]
    for r in runs:
        if r.report is None:
            lines.append(f"| ❌ | {cell(r.label)} | – | not checked: {cell(r.error or 'unreachable')} |")
        else:
            points, max_points = r.report.score
            lines.append(f"| {'✅' if r.exit_code == 0 else '❌'} | {cell(r.label)} | {points:g}/{max_points:g} | "
                         f"{'passed' if r.exit_code == 0 else 'did not pass'} |")
    lines.append("")
    for r in runs:
        if r.report is not None:
            lines += _section(r.report, r.exit_code, r.label)
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- annotations


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(reports: list[tuple[str | None, RunReport]]) -> list[str]:
    """`::error title=…::…` for each claim that does not hold or could not be judged."""
    lines = []
    for label, report in reports:
        where = f"{label}: " if label else ""
        for c in report.claims:
            if c.verdict not in (FAIL, NOT_JUDGED):
                continue
            title = f"{where}check-lab {report.lab.id}: {c.title} ({c.id})"
            message = f"{VERDICT_WORDS[c.verdict]}: {c.observed}" + (f"\nhint: {c.hint}" if c.hint else "")
            lines.append(f"::error title={escape_property(title)}::{escape_data(message)}")
    return lines


def deliver(request, text: str, reports: list[tuple[str | None, RunReport]], stdout_taken: bool) -> None:
    """The summary to $GITHUB_STEP_SUMMARY (appended, as every step's summary is) when it goes to standard
    output inside a workflow, else where asked; the annotations where GitHub reads workflow commands."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if request.destination == "-" and summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        request.write(text)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        out = sys.stderr if stdout_taken else sys.stdout
        for line in annotations(reports):
            print(line, file=out)
        out.flush()
