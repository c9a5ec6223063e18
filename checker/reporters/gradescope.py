"""Gradescope's autograder results (`--report gradescope:/autograder/results/results.json`): one test per claim,
with its points, what was expected and observed, and the hint when it does not hold.

The format is Gradescope's results.json (gradescope-autograders.readthedocs.io, "Autograder Specifications").
A claim not judged scores 0 of its points and says why; a claim not applicable here scores 0 of 0 and says
why. The lab's departures from the course's text and its sentences that do not hold on this engine go to the
submission's own output. Several labs on one machine (`check-lab course`) are one submission, each test
numbered LAB.N; a class (`--targets`) is not one submission: use the roster's formats for it.
"""

from __future__ import annotations

import json

from checker.records import FAIL, NOT_APPLICABLE, NOT_JUDGED, PASS, LabInfo, RunReport, TargetRun

WORDS = {PASS: "holds", FAIL: "does not hold", NOT_JUDGED: "not judged", NOT_APPLICABLE: "not applicable here"}


def _test(report: RunReport, number: int, claim) -> dict:
    lines = [f"{WORDS[claim.verdict]}."]
    if claim.verdict == NOT_JUDGED:
        lines.append(f"It could not be judged, so it scores none of its points: {claim.observed}")
    elif claim.verdict == NOT_APPLICABLE:
        lines.append(f"Nothing you do on this machine can make it true, so it counts 0 of 0 points: {claim.observed}")
    else:
        lines += [f"Expected: {claim.expected}", f"Observed: {claim.observed}"]
    if claim.verdict in (FAIL, NOT_JUDGED) and claim.hint:
        lines.append(f"Hint: {claim.hint}")
    return {
        "name": f"{claim.title} ({claim.id})",
        "number": f"{report.lab.id}.{number}",
        "score": claim.points,
        "max_score": claim.max_points,
        "status": "passed" if claim.verdict in (PASS, NOT_APPLICABLE) else "failed",
        "output": "\n".join(lines),
        "tags": [f"lab {report.lab.id}", claim.verdict],
        "visibility": "visible",
        "extra_data": {"lab": report.lab.id, "claim": claim.id, "verdict": claim.verdict},
    }


def _output(report: RunReport, exit_code: int) -> list[str]:
    points, max_points = report.score
    lines = [f"check-lab {report.lab.id} – {report.lab.title} on {report.target}: {points:g} of {max_points:g} points "
             f"(exit code {exit_code})."]
    if report.error:
        lines.append(f"The run stopped: {report.error}")
    if report.engine:
        lines.append(f"Engine: Docker {report.engine.server_version}, {report.engine.storage_driver}.")
    for d in report.lab.departures:
        lines.append(f"Departs from the course's text ({d.get('step') or d.get('claim') or d.get('here')}): {d['why']}")
    for st in report.differences:
        lines.append(f"The lab's text does not hold on this engine: {st.title} – here: {st.observed}")
    return lines


def to_dict(reports: list[tuple[RunReport, int]], seconds: float) -> dict:
    tests, output = [], []
    for report, exit_code in reports:
        tests += [_test(report, n, c) for n, c in enumerate(report.claims, 1)]
        output += _output(report, exit_code)
    return {
        "score": sum(t["score"] for t in tests),
        "execution_time": round(seconds),
        "output": "\n".join(output),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def render(report: RunReport, exit_code: int) -> str:
    return json.dumps(to_dict([(report, exit_code)], report.duration), indent=2) + "\n"


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    """The labs of one machine (`check-lab course`) as one submission."""
    data = to_dict([(r.report, r.exit_code) for r in runs if r.report is not None], sum(r.seconds for r in runs))
    lost = [f"{r.label}: not checked – {r.error or 'unreachable'}" for r in runs if r.report is None]
    if lost:
        data["output"] = "\n".join([data["output"], *lost]).strip()
    return json.dumps(data, indent=2) + "\n"
