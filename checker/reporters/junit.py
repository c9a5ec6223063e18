"""JUnit XML (`--report junit:FILE`, `--junit FILE`) for CI: one test case per claim, and one per step in a
second suite."""

from __future__ import annotations

import re

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from checker.records import FAIL, NOT_APPLICABLE, NOT_JUDGED, LabInfo, RunReport, TargetRun


# Characters XML 1.0 does not allow (a program's colours: ESC): shown as their control pictures (U+2400 + code).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: chr(0x2400 + ord(m.group())), text)


def build(report: RunReport, exit_code: int) -> JUnitXml:
    lab = report.lab
    xml = JUnitXml(f"check-lab {lab.id}")
    for suite in suites(report, exit_code):
        xml.add_testsuite(suite)
    return xml


def suites(report: RunReport, exit_code: int, label: str | None = None) -> list[TestSuite]:
    lab = report.lab
    prefix = f"lab{lab.id}" + (f".{label}" if label else "")
    where = f" [{label}]" if label else ""
    claims = TestSuite(f"check-lab {lab.id} – {lab.title}: claims{where}")
    claims.add_property("target", report.target)
    if report.engine:
        claims.add_property("engine", f"Docker {report.engine.server_version}, {report.engine.storage_driver}")
    points, max_points = report.score
    claims.add_property("score", f"{points:g}/{max_points:g}")
    claims.add_property("exit_code", str(exit_code))
    for i, d in enumerate(report.lab.departures, 1):
        claims.add_property(f"departs-from-course.{i}", f"{d.get('step') or d.get('claim') or d.get('here')}: {d['why']}")
    for st in report.differences:
        claims.add_property(f"lab-vs-engine.{st.id}", f"{st.title} | here: {st.observed}")
    for c in report.claims:
        case = TestCase(f"{c.title} ({c.id})", classname=f"{prefix}.claims")
        text = f"expected: {c.expected}\nobserved: {c.observed}" + (f"\nhint: {c.hint}" if c.hint else "")
        if c.verdict == FAIL:
            case.result = [Failure(f"{c.title}: {c.observed}", "claim")]
            case.result[0].text = text
        elif c.verdict == NOT_JUDGED:
            case.result = [Error(c.observed, "not-judged")]
            case.result[0].text = text
        elif c.verdict == NOT_APPLICABLE:
            case.result = [Skipped(c.observed, "not-applicable")]
        case.system_out = text
        claims.add_testcase(case)

    steps = TestSuite(f"check-lab {lab.id} – {lab.title}: steps{where}")
    for s in report.steps:
        case = TestCase(s.step_id, classname=f"{prefix}.steps",
                        time=round(s.result.duration, 3) if s.result else 0)
        if s.status == "not-run":
            case.result = [Skipped("not run: an earlier step failed or the run stopped")]
        elif s.status == "skipped":
            case.result = [Skipped("observe mode: this step would change the machine")]
        elif s.status != "passed":
            case.result = [Failure(s.error or s.status, s.status)]
        if s.result:
            case.system_out = f"$ {s.command}\n{s.result.stdout[-20000:]}"
            if s.result.stderr:
                case.system_err = s.result.stderr[-20000:]
        steps.add_testcase(case)

    return [claims, steps]


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    """A test suite per target; a target that could not be checked is one errored test case."""
    xml = JUnitXml(f"check-lab {lab.id}: {len(runs)} targets")
    for r in runs:
        if r.report is not None:
            for suite in suites(r.report, r.exit_code, r.label):
                xml.add_testsuite(suite)
            continue
        suite = TestSuite(f"check-lab {lab.id} – {lab.title}: claims [{r.label}]")
        suite.add_property("target", r.spec)
        case = TestCase("reachable", classname=f"lab{lab.id}.{r.label}")
        case.result = [Error(r.error or "unreachable", "unreachable")]
        suite.add_testcase(case)
        xml.add_testsuite(suite)
    xml.update_statistics()
    return xml_safe(xml.tostring().decode("utf-8"))


def render(report: RunReport, exit_code: int) -> str:
    xml = build(report, exit_code)
    xml.update_statistics()
    return xml_safe(xml.tostring().decode("utf-8"))
