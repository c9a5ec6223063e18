"""The report formats on replayed runs: the JSON report against its golden copy and its JSON Schema, JUnit
read back by a JUnit parser, the console text; one run and many targets.

To refresh the golden copy after an intended change of the JSON report:
    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_reports.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from junitparser import JUnitXml, Skipped

from checker import reporters
from checker.errors import UsageError
from checker.exitcodes import for_run, for_targets
from checker.records import TargetRun
from checker.reporters import console, json_report, junit
from tests.unit.replay import replay

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SCHEMA = json.loads((Path(json_report.__file__).resolve().parent.parent / "schemas" / "report.schema.json").read_text())


def normalized(data: dict) -> dict:
    """The report without what differs from run to run (times, durations, where the lab folder is)."""
    data = json.loads(json.dumps(data))
    data["started_at"] = "<time>"
    data["duration_s"] = 0
    data["timings"] = {}
    data["lab"]["folder"] = "<lab folder>"
    for step in data["steps"]:
        step["duration_s"] = 0 if step["duration_s"] is not None else None
    return data


def validate(data: dict) -> None:
    jsonschema.validate(data, SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replays")
    return {name: replay("e1-bookworm-docker20", name, tmp) for name in ("pass", "extra-run-layer", "observe")}


def test_json_report_matches_its_golden_copy(runs):
    report = runs["pass"]
    data = normalized(json_report.to_dict(report, for_run(report)))
    golden = GOLDEN / "report-e1-pass.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert data == json.loads(golden.read_text())


@pytest.mark.parametrize("name", ["pass", "extra-run-layer", "observe"])
def test_json_reports_follow_the_schema(runs, name):
    report = runs[name]
    data = json.loads(json_report.render(report, for_run(report)))
    validate(data)
    assert data["summary"]["claims"] == len(report.claims) == 10


def test_the_schema_refuses_what_is_not_a_report(runs):
    data = json.loads(json_report.render(runs["pass"], 0))
    for broken in ({**data, "version": 2}, {k: v for k, v in data.items() if k != "claims"},
                   {**data, "claims": [{**data["claims"][0], "verdict": "maybe"}]}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_junit_report_read_back(runs):
    report = runs["extra-run-layer"]
    xml = JUnitXml.fromstring(junit.render(report, for_run(report)))
    suites = list(xml)
    claims, steps = suites
    assert claims.tests == 10 and claims.failures == 2 and claims.errors == 0
    failed = {case.name for case in claims if case.result and case.result[0].type == "claim"}
    assert failed == {"cmd-layer-empty", "image-sizes-equal"}
    assert steps.tests == len(report.steps)
    properties = {p.name: p.value for p in claims.properties()}
    assert properties["score"] == "8/10" and properties["exit_code"] == "1"


def test_junit_keeps_a_programs_colours_readable_and_the_xml_valid(runs):
    """A step printing ANSI colours (Flask's banner does): ESC is not allowed in XML 1.0."""
    import copy
    import dataclasses

    report = copy.deepcopy(runs["pass"])
    step = report.steps[0]
    step.result = dataclasses.replace(step.result, stdout="\x1b[31m\x1b[1mWARNING\x1b[0m\x07 done\n")
    xml = JUnitXml.fromstring(junit.render(report, for_run(report)))
    out = list(list(xml)[1])[0].system_out
    assert "\u241b[31m" in out and "WARNING" in out and "\x1b" not in out


def test_junit_marks_claims_not_judged_as_errors(runs):
    report = runs["observe"]
    xml = JUnitXml.fromstring(junit.render(report, for_run(report)))
    claims = next(iter(xml))
    judged = sum(1 for c in report.claims if c.verdict != "error")
    assert claims.tests == 10 and claims.errors == 10 - judged
    skipped = [case.name for case in list(xml)[1] if case.result and isinstance(case.result[0], Skipped)]
    assert "pull" in skipped  # observe mode does not run a step that changes the machine


def test_console_text_has_every_claim_and_the_verdict(runs):
    report = runs["extra-run-layer"]
    text = console.render(report, for_run(report))
    assert "\x1b[" not in text  # plain text, no colours
    for claim in report.claims:
        assert claim.id in text
    assert "FAIL: 8/10 claims hold" in text and "hint:" in text


def test_many_targets_in_every_format(runs):
    results = [TargetRun("alice", "vagrant:/vms/alice", runs["pass"], None, 0, 5.0),
               TargetRun("bob", "ssh://vagrant@10.0.0.12:22", None, "cannot reach ssh://vagrant@10.0.0.12:22", 3, 1.0)]
    code = for_targets(r.exit_code for r in results)
    lab = runs["pass"].lab
    data = json.loads(json_report.render_many(lab, results, code))
    validate(data)
    assert data["summary"] == {"targets": 2, "passed": 1, "unreachable": 1} and data["exit_code"] == 3
    xml = JUnitXml.fromstring(junit.render_many(lab, results, code))
    names = [suite.name for suite in xml]
    assert any(n.endswith("claims [alice]") for n in names) and any(n.endswith("claims [bob]") for n in names)
    text = console.render_many(lab, results, code)
    assert "alice" in text and "unreachable" in text


def test_report_requests(tmp_path):
    assert reporters.parse_request(f"json:{tmp_path}/r.json").format == "json"
    assert reporters.parse_request("junit").destination == "-"
    for bad, message in (("yaml:x", "unknown format 'yaml'"), ("json:", "give a file name"),
                         (f"json:{tmp_path}", "is a folder"), ("json:/no/such/folder/r.json", "does not exist")):
        with pytest.raises(UsageError, match=message):
            reporters.parse_request(bad)


def test_every_registered_format_renders_a_run_and_many(runs):
    report = runs["pass"]
    for fmt in reporters.REPORTERS:
        module = reporters.module(fmt)
        assert module.render(report, 0).strip()
        assert module.render_many(report.lab, [TargetRun("a", "local", report, None, 0, 1.0)], 0).strip()


def test_a_claim_not_applicable_here_is_no_failure_in_any_format(runs):
    """n/a: what the machine cannot do whatever the student does (a kernel without IP_VS has no routing mesh)."""
    import copy
    import dataclasses

    report = copy.deepcopy(runs["pass"])
    first = report.claims[0]
    report.claims[0] = dataclasses.replace(first, verdict="n/a", observed="not applicable here: no IP_VS",
                                           hint="", points=0.0, max_points=0.0)
    assert report.passed and for_run(report) == 0
    assert report.score[1] == len(report.claims) - 1
    data = json_report.to_dict(report, for_run(report))
    validate(data)
    assert data["summary"]["not_applicable"] == 1 and data["result"] == "pass"
    xml = JUnitXml.fromstring(junit.render(report, for_run(report)))
    claims = next(iter(xml))
    assert claims.failures == 0 and claims.errors == 0 and claims.skipped == 1
    text = console.render(report, for_run(report))
    assert f"PASS: {len(report.claims) - 1}/{len(report.claims) - 1} claims hold (1 not applicable here)" in text
    report.claims = report.claims[:1]  # nothing applicable: nothing passed
    assert not report.passed
