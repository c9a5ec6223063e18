"""The versioned JSON report (`--report json:FILE`, `--json FILE`). Schema: `check-lab-report`, version below,
described by checker/schemas/report.schema.json; additions keep the version, renames or removals raise it."""

from __future__ import annotations

import json

from checker import __version__
from checker.exitcodes import result_word
from checker.records import (FAIL, NOT_APPLICABLE, NOT_JUDGED, PASS, ClaimResult, Engine, LabInfo, Result, RunReport, StepFact,
                             TargetRun, left_unchanged)

SCHEMA = "check-lab-report"
VERSION = 1
FINGERPRINT_KEYS = ("since", "changes", "before", "after")  # (`unchanged` follows from them)
MAX_OUTPUT_CHARS = 20_000  # per stream per step; the full text stays in --record transcripts


def _clip(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[: MAX_OUTPUT_CHARS // 2] + f"\n… [{len(text) - MAX_OUTPUT_CHARS} characters left out] …\n" + \
        text[-MAX_OUTPUT_CHARS // 2:]


def _lab(lab: LabInfo) -> dict:
    return {"id": lab.id, "title": lab.title, "folder": lab.folder, "variables": lab.variables}


def to_dict(report: RunReport, exit_code: int) -> dict:
    points, max_points = report.score
    counts = report.counts()
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "tool": {"name": "check-lab", "version": __version__},
        "lab": _lab(report.lab),
        "target": report.target,
        "engine": report.engine.as_dict() if report.engine else None,
        "started_at": report.started_at,
        "duration_s": round(report.duration, 3),
        "result": result_word(exit_code),
        "exit_code": exit_code,
        "score": {"points": points, "max": max_points},
        "summary": {"claims": len(report.claims), "passed": counts["pass"], "failed": counts["fail"],
                    "errors": counts["error"], "not_applicable": counts["n/a"]},
        "steps": [
            {
                "id": s.step_id, "title": s.title, "command": s.command, "status": s.status,
                "exit_status": s.result.exit_status if s.result else None,
                "timed_out": bool(s.result and s.result.timed_out),
                "duration_s": round(s.result.duration, 3) if s.result else None,
                "stdout": _clip(s.result.stdout) if s.result else "",
                "stderr": _clip(s.result.stderr) if s.result else "",
                "error": s.error,
            }
            for s in report.steps
        ],
        "claims": [
            {"id": c.id, "title": c.title, "verdict": c.verdict, "expected": c.expected, "observed": c.observed,
             "hint": c.hint, "points": c.points, "max_points": c.max_points, "details": c.details,
             "evidence": list(c.evidence)}
            for c in report.claims
        ],
        "lab_vs_engine": [
            {"id": st.id, "statement": st.title, "holds": st.verdict == "pass",
             "judged": st.verdict not in ("error", "n/a"), "applies": st.verdict != "n/a", "here": st.observed}
            for st in report.statements
        ],
        "departures": [dict(d) for d in report.lab.departures],
        "fingerprint": (None if report.fingerprint is None else
                        {**report.fingerprint, "unchanged": left_unchanged(report.fingerprint)}),
        "notes": list(report.notes),
        "timings": dict(report.timings),
        "error": report.error,
        # What ties the report to one machine and one run (with --sign, to the grader's key).
        "identity": {"engine_id": report.engine.engine_id if report.engine else None,
                     "host": report.engine.name if report.engine else None, "machine_id": report.machine_id,
                     "nonce": report.nonce, "student": report.student},
        # Where every gathered fact came from (a claim's `evidence` names these, and the steps above).
        "sources": {name: dict(src) for name, src in sorted(report.sources.items())},
    }


def to_dict_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> dict:
    """Many targets (or, kind "course", many labs on one target): one section each (its full report, or why
    it could not be checked)."""
    sections = []
    for r in runs:
        section = {"label": r.label, "target": r.spec, "exit_code": r.exit_code,
                   "result": "unreachable" if r.report is None else result_word(r.exit_code),
                   "error": r.error, "duration_s": round(r.seconds, 3)}
        if r.report is not None:
            section["report"] = to_dict(r.report, r.exit_code)
            points, max_points = r.report.score
            section["score"] = {"points": points, "max": max_points}
        sections.append(section)
    return {
        "schema": SCHEMA, "version": VERSION, "kind": kind,
        "tool": {"name": "check-lab", "version": __version__},
        "lab": _lab(lab),
        "result": result_word(exit_code), "exit_code": exit_code,
        "summary": {"targets": len(runs), "passed": sum(1 for r in runs if r.exit_code == 0),
                    "unreachable": sum(1 for r in runs if r.report is None)},
        "targets": sections,
    }


def to_dict_engines(lab: LabInfo, engines: list, exit_code: int) -> dict:
    """The course on many targets, one per engine (checker.course.EngineCourse): each target's course report,
    or why it could not be used. `check-lab drift` reads it (one engine per target)."""
    sections = []
    for e in engines:
        sections.append({"label": e.label, "target": e.spec, "exit_code": int(e.exit_code),
                         "result": "unreachable" if e.error else result_word(e.exit_code), "error": e.error,
                         "duration_s": round(e.seconds, 3),
                         "course": None if e.error else to_dict_many(lab, e.runs, e.exit_code, "course")})
    return {"schema": SCHEMA, "version": VERSION, "kind": "engines",
            "tool": {"name": "check-lab", "version": __version__}, "lab": _lab(lab),
            "result": result_word(exit_code), "exit_code": exit_code,
            "summary": {"targets": len(engines), "passed": sum(1 for e in engines if e.exit_code == 0),
                        "unreachable": sum(1 for e in engines if e.error)},
            "targets": sections}


def render_engines(lab: LabInfo, engines: list, exit_code: int) -> str:
    return json.dumps(to_dict_engines(lab, engines, exit_code), indent=2, default=str) + "\n"


def render(report: RunReport, exit_code: int) -> str:
    return json.dumps(to_dict(report, exit_code), indent=2, default=str) + "\n"


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    return json.dumps(to_dict_many(lab, runs, exit_code, kind), indent=2, default=str) + "\n"


# ------------------------------------------------------------------------------------------------ reading


class NotAReport(ValueError):
    """A file that is not a check-lab JSON report (of this schema and version)."""


def _engine(data: dict | None) -> Engine | None:
    if not data:
        return None
    builder = data.get("builder")
    return Engine(server_version=str(data.get("server_version", "")), storage_driver=str(data.get("storage_driver", "")),
                  docker_root_dir=str(data.get("docker_root_dir", "")),
                  driver_status=(("driver-type", "io.containerd.snapshotter.v1"),) if data.get("containerd_image_store")
                  else (), operating_system=str(data.get("operating_system", "")), kernel=str(data.get("kernel", "")),
                  cgroup_version=str(data.get("cgroup_version", "")), client_version=str(data.get("client_version", "")),
                  buildx=bool(data.get("buildx")),
                  buildkit_env={"buildkit": "1", "legacy": "0"}.get(builder) if builder else None,
                  engine_id=str(data.get("id") or ""), name=str(data.get("name") or ""),
                  labels=tuple(str(label) for label in data.get("labels") or ()),
                  product=str(data.get("product") or "docker"), rootless=bool(data.get("rootless")))


def from_dict(data: dict) -> RunReport:
    """The run a JSON report (one lab on one target) describes, as the reporters take it: its claims,
    statements, steps and their output (as clipped in the report), departures, notes and score."""
    try:
        lab = LabInfo(str(data["lab"]["id"]), str(data["lab"]["title"]), str(data["lab"].get("folder", "")),
                      dict(data["lab"].get("variables") or {}), tuple(dict(d) for d in data.get("departures") or ()))
        steps = [StepFact(s["id"], s["title"], s["command"], s["status"],
                          None if s["exit_status"] is None and s["duration_s"] is None else
                          Result(s["exit_status"], s["stdout"], s["stderr"], s["duration_s"] or 0.0,
                                 bool(s["timed_out"])), error=s.get("error"))
                 for s in data["steps"]]
        claims = [ClaimResult(c["id"], c["title"], c["verdict"], c["expected"], c["observed"], c["hint"],
                              dict(c.get("details") or {}), float(c["points"]), float(c["max_points"]),
                              tuple(c.get("evidence") or ()))
                  for c in data["claims"]]
        statements = [ClaimResult(st["id"], st["statement"], PASS if st["holds"] else (FAIL if st["judged"] else
                                  NOT_JUDGED if st.get("applies", True) else NOT_APPLICABLE), "", st["here"], "", {},
                                  0.0, 0.0)
                      for st in data.get("lab_vs_engine") or []]
        fingerprint = data.get("fingerprint")
        return RunReport(lab, str(data["target"]), str(data["started_at"]), _engine(data.get("engine")), steps, claims,
                         statements, list(data.get("notes") or []), float(data.get("duration_s") or 0.0),
                         interrupted=data.get("result") == "interrupted", error=data.get("error"),
                         timings=dict(data.get("timings") or {}),
                         fingerprint=None if fingerprint is None else
                         {key: fingerprint[key] for key in FINGERPRINT_KEYS if key in fingerprint},
                         nonce=(data.get("identity") or {}).get("nonce"),
                         student=(data.get("identity") or {}).get("student"),
                         machine_id=(data.get("identity") or {}).get("machine_id"),
                         sources={str(k): dict(v) for k, v in (data.get("sources") or {}).items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise NotAReport(f"not a check-lab report of one run: {exc.__class__.__name__} {exc}") from None


def runs_from(data: dict, label: str) -> tuple[LabInfo, list[TargetRun]]:
    """A JSON report read back: its lab and its runs (one for a single run, labelled `label`; one per target
    for a report of many, labelled as there)."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise NotAReport("not a check-lab report (no \"schema\": \"check-lab-report\")")
    if data.get("version") != VERSION:
        raise NotAReport(f"a check-lab report of version {data.get('version')}, this check-lab reads version {VERSION}")
    if data.get("kind") == "engines":
        raise NotAReport("the course on several engines (check-lab course --targets): check-lab drift reads it")
    if data.get("kind") in ("targets", "course"):
        runs = []
        for section in data.get("targets") or []:
            report = from_dict(section["report"]) if section.get("report") else None
            runs.append(TargetRun(str(section["label"]), str(section.get("target", "")), report, section.get("error"),
                                  int(section.get("exit_code", 0)), float(section.get("duration_s") or 0.0)))
        lab = LabInfo(str(data["lab"]["id"]), str(data["lab"]["title"]), str(data["lab"].get("folder", "")))
        return lab, runs
    report = from_dict(data)
    return report.lab, [TargetRun(label, report.target, report, None, int(data.get("exit_code", 0)),
                                  report.duration)]


def engines_from(data: dict) -> list[tuple[str, list[RunReport]]]:
    """A report of the course on several engines (kind `engines`) read back: each engine's label and the runs
    of its labs (none for a target that could not be used)."""
    out = []
    for section in data.get("targets") or []:
        course = section.get("course")
        runs = runs_from(course, str(section["label"]))[1] if course else []
        out.append((str(section["label"]), [r.report for r in runs if r.report is not None]))
    return out
