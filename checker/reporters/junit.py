"""JUnit XML (`--junit FILE`) for CI: one test case per claim, and one per step in a second suite."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from checker.reporters.json_report import atomic_write
from checker.runner import RunReport


def build(report: RunReport, exit_code: int) -> JUnitXml:
    lab = report.plan.lab
    xml = JUnitXml(f"check-lab {lab.id}")
    for suite in suites(report, exit_code):
        xml.add_testsuite(suite)
    return xml


def suites(report: RunReport, exit_code: int, label: str | None = None) -> list[TestSuite]:
    lab = report.plan.lab
    prefix = f"lab{lab.id}" + (f".{label}" if label else "")
    where = f" [{label}]" if label else ""
    claims = TestSuite(f"check-lab {lab.id} – {lab.title}: claims{where}")
    claims.add_property("target", report.target)
    if report.engine:
        claims.add_property("engine", f"Docker {report.engine.server_version}, {report.engine.storage_driver}")
    points, max_points = report.score
    claims.add_property("score", f"{points:g}/{max_points:g}")
    claims.add_property("exit_code", str(exit_code))
    for st in report.differences:
        claims.add_property(f"lab-vs-engine.{st.id}", f"{st.title} | here: {st.observed}")
    for c in report.claims:
        case = TestCase(c.id, classname=f"{prefix}.claims")
        text = f"expected: {c.expected}\nobserved: {c.observed}" + (f"\nhint: {c.hint}" if c.hint else "")
        if c.verdict == "fail":
            case.result = [Failure(f"{c.title}: {c.observed}", "claim")]
            case.result[0].text = text
        elif c.verdict == "error":
            case.result = [Error(c.observed, "not-judged")]
            case.result[0].text = text
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


def write_many(plan, results, exit_code: int, path: Path) -> None:
    """A test suite per target; a target that could not be checked is one errored test case."""
    xml = JUnitXml(f"check-lab {plan.lab.id}: {len(results)} targets")
    for r in results:
        if r.report is not None:
            for suite in suites(r.report, r.exit_code, r.entry.label):
                xml.add_testsuite(suite)
            continue
        suite = TestSuite(f"check-lab {plan.lab.id} – {plan.lab.title}: claims [{r.entry.label}]")
        suite.add_property("target", r.entry.spec)
        case = TestCase("reachable", classname=f"lab{plan.lab.id}.{r.entry.label}")
        case.result = [Error(r.error or "unreachable", "unreachable")]
        suite.add_testcase(case)
        xml.add_testsuite(suite)
    xml.update_statistics()
    atomic_write(Path(path), xml.tostring().decode("utf-8"))


def write(report: RunReport, exit_code: int, path: Path) -> None:
    xml = build(report, exit_code)
    xml.update_statistics()
    atomic_write(Path(path), xml.tostring().decode("utf-8"))
