"""The class roster (`--report roster:FILE` with `--targets`, or `check-lab merge`): one students × claims
matrix as JSON, each student's score, result and the claims that did not hold with their hints. A run on
one target is a roster of one. `csv` (checker/reporters/csv_report.py) writes the same matrix for a
spreadsheet. Students whose reports name the same Docker engine (one machine, or copies of one) are marked
beside each other. Schema: `check-lab-roster`, version below (checker/schemas/roster.schema.json)."""

from __future__ import annotations

import json

from checker import __version__
from checker.exitcodes import result_word
from checker.records import FAIL, NOT_JUDGED, VERDICT_WORDS, LabInfo, RunReport, TargetRun

SCHEMA = "check-lab-roster"
VERSION = 1


def _key(run: TargetRun, claim_id: str, kind: str) -> str:
    """A claim's column: its id; for the labs of the course on one machine, LAB:ID."""
    return f"{run.report.lab.id}:{claim_id}" if kind == "course" else claim_id


def matrix(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> dict:
    claims: dict[str, dict] = {}
    for r in runs:
        for c in (r.report.claims if r.report else []):
            claims.setdefault(_key(r, c.id, kind), {"id": _key(r, c.id, kind), "title": c.title,
                                                     "max_points": c.max_points})
    # Two students whose reports name the same Docker engine (its ID) were checked on one machine, or on
    # copies of one: the roster says so beside each of them.
    engines: dict[str, list[str]] = {}
    for r in runs:
        if r.report is not None and r.report.engine is not None and r.report.engine.engine_id:
            engines.setdefault(r.report.engine.engine_id, []).append(r.label)
    students = []
    for r in runs:
        row = {"student": r.label, "target": r.spec, "result": "unreachable" if r.report is None else
               result_word(r.exit_code), "exit_code": r.exit_code, "score": None, "max": None, "verdicts": {},
               "points": {}, "not_passed": [], "error": r.error if r.report is None else r.report.error,
               "engine_id": None, "same_engine_as": []}
        if r.report is not None:
            row["score"], row["max"] = r.report.score
            if r.report.engine is not None and r.report.engine.engine_id:
                row["engine_id"] = r.report.engine.engine_id
                row["same_engine_as"] = [o for o in engines[row["engine_id"]] if o != r.label]
            for c in r.report.claims:
                key = _key(r, c.id, kind)
                row["verdicts"][key], row["points"][key] = c.verdict, c.points
                if c.verdict in (FAIL, NOT_JUDGED):
                    row["not_passed"].append({"claim": key, "title": c.title, "verdict": VERDICT_WORDS[c.verdict],
                                              "observed": c.observed, "hint": c.hint})
        students.append(row)
    return {
        "schema": SCHEMA, "version": VERSION, "tool": {"name": "check-lab", "version": __version__},
        "lab": {"id": lab.id, "title": lab.title}, "kind": kind, "result": result_word(exit_code),
        "exit_code": exit_code, "claims": list(claims.values()), "students": students,
        "summary": {"students": len(runs), "passed": sum(1 for r in runs if r.exit_code == 0),
                    "unreachable": sum(1 for r in runs if r.report is None),
                    "sharing_an_engine": sum(1 for row in students if row["same_engine_as"])},
    }


def render(report: RunReport, exit_code: int) -> str:
    run = TargetRun(report.target, report.target, report, None, exit_code, report.duration)
    return render_many(report.lab, [run], exit_code)


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    return json.dumps(matrix(lab, runs, exit_code, kind), indent=2) + "\n"
