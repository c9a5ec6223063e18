"""The class roster as CSV (`--report csv:FILE`): a row per student (target), a column per claim with its
verdict (pass, fail, not judged, n/a; empty where the student's machine could not be checked), the score
and the result. The same matrix as `roster` (checker/reporters/roster.py)."""

from __future__ import annotations

import csv
import io

from checker.records import NOT_JUDGED, LabInfo, RunReport, TargetRun
from checker.reporters.roster import matrix

WORDS = {NOT_JUDGED: "not judged"}


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    data = matrix(lab, runs, exit_code, kind)
    columns = [c["id"] for c in data["claims"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "target", "result", "score", "max", "same engine as", *columns])
    for row in data["students"]:
        writer.writerow([row["student"], row["target"], row["result"],
                         "" if row["score"] is None else f"{row['score']:g}",
                         "" if row["max"] is None else f"{row['max']:g}", " ".join(row["same_engine_as"]),
                         *(WORDS.get(row["verdicts"].get(c, ""), row["verdicts"].get(c, "")) for c in columns)])
    return out.getvalue()


def render(report: RunReport, exit_code: int) -> str:
    return render_many(report.lab, [TargetRun(report.target, report.target, report, None, exit_code,
                                              report.duration)], exit_code)
