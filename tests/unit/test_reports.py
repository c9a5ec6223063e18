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
    assert failed == {f"{c.title} ({c.id})" for c in report.claims if c.id in ("cmd-layer-empty", "image-sizes-equal")}
    assert all(case.name.endswith(f"({c.id})") and case.name.startswith(c.title) for case, c in zip(claims, report.claims))
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
    report.claims = report.claims[:1]  # nothing applicable: nothing asked of this engine, nothing failed
    assert report.passed and "PASS: none of the 1 claims applies to this engine" in console.render(report, 0)
    report.steps[0].status = "failed"  # ... unless a step failed
    assert not report.passed
    report.claims = []  # no claims at all: nothing passed
    assert not report.passed


# ------------------------------------------------------------------------------------ TAP, Gradescope, GitHub


def with_verdict(report, claim_id: str, verdict: str, observed: str):
    """The report with one claim given another verdict (as a lab whose claim is not judged, or n/a, has it)."""
    import copy
    import dataclasses

    report = copy.deepcopy(report)
    report.claims = [dataclasses.replace(c, verdict=verdict, observed=observed, points=0.0,
                                         max_points=0.0 if verdict == "n/a" else c.max_points)
                     if c.id == claim_id else c for c in report.claims]
    return report


def tap_lines(text: str):
    from tap.parser import Parser

    return [line for line in Parser().parse_text(text) if line.category == "test"]


def test_tap_read_back_by_a_tap_parser(runs):
    from checker.reporters import tap

    report = with_verdict(runs["extra-run-layer"], "base-layers-shared", "n/a", "not applicable here: no # tag on this engine")
    text = tap.render(report, for_run(report))
    assert text.startswith("TAP version 13\n1..10\n")
    tests = tap_lines(text)
    assert [t.number for t in tests] == list(range(1, 11))
    by_id = {t.description.rsplit("(", 1)[1].rstrip(")"): t for t in tests}
    assert set(by_id) == {c.id for c in report.claims}
    failed = {cid for cid, t in by_id.items() if not t.ok}
    assert failed == {"cmd-layer-empty", "image-sizes-equal"}
    block = by_id["image-sizes-equal"].yaml_block
    claim = next(c for c in report.claims if c.id == "image-sizes-equal")
    assert block["expected"] == claim.expected and block["observed"] == claim.observed and block["hint"] == claim.hint
    assert block["verdict"] == "fails"
    skipped = by_id["base-layers-shared"]
    assert skipped.ok and skipped.skip and "# tag" in skipped.directive.reason  # the claim's own # is escaped


def test_tap_many_targets_one_stream(runs):
    from checker.reporters import tap

    results = [TargetRun("alice", "vagrant:/vms/alice", runs["pass"], None, 0, 5.0),
               TargetRun("bob", "ssh://vagrant@10.0.0.12:22", None, "cannot reach ssh://vagrant@10.0.0.12:22", 3, 1.0)]
    tests = tap_lines(tap.render_many(runs["pass"].lab, results, 3))
    assert len(tests) == 11 and all(t.ok for t in tests[:10]) and not tests[10].ok
    assert tests[10].yaml_block["error"] == "cannot reach ssh://vagrant@10.0.0.12:22"


GRADESCOPE_SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas" /
                                "gradescope-results.schema.json").read_text())


def test_gradescope_results_follow_gradescopes_specification(runs):
    from checker.reporters import gradescope

    report = with_verdict(runs["extra-run-layer"], "base-layers-shared", "n/a", "the engine has no such thing")
    report = with_verdict(report, "containers-stopped", "error", "step stop did not run")
    data = json.loads(gradescope.render(report, for_run(report)))
    jsonschema.validate(data, GRADESCOPE_SCHEMA)
    tests = {t["extra_data"]["claim"]: t for t in data["tests"]}
    assert len(tests) == 10 and data["score"] == sum(t["score"] for t in data["tests"]) == report.score[0]
    failed = tests["image-sizes-equal"]
    assert failed["status"] == "failed" and failed["score"] == 0 and failed["max_score"] == 1
    assert "Expected: " in failed["output"] and "Observed: " in failed["output"] and "Hint: " in failed["output"]
    assert failed["name"].endswith("(image-sizes-equal)") and failed["number"] == "07." + str(
        [c.id for c in report.claims].index("image-sizes-equal") + 1)
    not_judged = tests["containers-stopped"]
    assert not_judged["status"] == "failed" and "could not be judged" in not_judged["output"]
    assert "step stop did not run" in not_judged["output"]
    na = tests["base-layers-shared"]
    assert na["status"] == "passed" and na["score"] == na["max_score"] == 0
    assert "0 of 0 points" in na["output"] and "the engine has no such thing" in na["output"]
    with pytest.raises(jsonschema.ValidationError):  # the schema refuses what Gradescope would
        jsonschema.validate({**data, "tests": [{**failed, "status": "maybe"}]}, GRADESCOPE_SCHEMA)


def test_github_summary_is_markdown_with_a_row_per_claim(runs):
    from markdown_it import MarkdownIt

    from checker.reporters import github

    report = runs["extra-run-layer"]
    text = github.render(report, for_run(report))
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == 1 + len(report.claims)  # the header, then one per claim
    inline = [t.content for t in tokens if t.type == "inline"]
    for claim in report.claims:
        assert any(f"(`{claim.id}`)" in line for line in inline)
    assert sum(1 for line in inline if line == "❌") == 2


def test_github_annotations_and_step_summary(runs, monkeypatch, tmp_path, capsys):
    report = runs["extra-run-layer"]
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    request = reporters.parse_request("github")
    assert not reporters.on_stdout(request)  # in a workflow it goes to the summary file
    reporters.write_single([request], report, for_run(report))
    out = capsys.readouterr().out
    assert summary.read_text().startswith("earlier step\n### check-lab 07")  # appended
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.startswith("::error title=") for line in lines)
    import re

    for line in lines:
        title, message = re.fullmatch(r"::error title=([^:,]*)::(.*)", line).groups()
        assert "%0A" in message and "\n" not in message
        assert "check-lab 07%3A " in title


def test_a_report_on_standard_output_keeps_it_to_itself(monkeypatch, capsys):
    """`--report json:-`: standard output is the JSON report alone; what the terminal shows goes to stderr."""
    from checker import cli, targets
    from checker.transcript import ReplayTransport
    from tests.unit.replay import transcript

    path = transcript("e1-bookworm-docker20", "pass")
    monkeypatch.setattr(targets, "open_quickly", lambda options: ReplayTransport(path))
    code = cli.main(["07", "--report", "json:-", "--no-color"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    validate(data)
    assert code == 0 and data["result"] == "pass"
    assert "10/10 claims hold" in err


def test_gradescope_is_one_submission_not_a_class(capsys, tmp_path):
    from checker import cli

    listing = tmp_path / "class.txt"
    listing.write_text("local\n")
    assert cli.main(["07", "--targets", str(listing), "--report", f"gradescope:{tmp_path / 'r.json'}"]) == 2
    assert "gradescope is one student's submission" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the roster, merge

ROSTER_SCHEMA = json.loads((Path(json_report.__file__).resolve().parent.parent / "schemas" /
                            "roster.schema.json").read_text())


def test_a_json_report_reads_back_into_the_same_report(runs):
    for name in ("pass", "extra-run-layer", "observe"):
        report = runs[name]
        data = json.loads(json_report.render(report, for_run(report)))
        _lab, [run] = json_report.runs_from(data, "alice")
        assert json.loads(json_report.render(run.report, run.exit_code)) == data


def class_reports(runs, tmp_path) -> list[Path]:
    """alice passed, bob's image has a RUN layer too much, carol's machine could not be reached (a report of
    many targets, written by --targets), each as a JSON report written elsewhere."""
    alice, bob = tmp_path / "alice.json", tmp_path / "bob.json"
    alice.write_text(json_report.render(runs["pass"], 0))
    bob.write_text(json_report.render(runs["extra-run-layer"], for_run(runs["extra-run-layer"])))
    batch = tmp_path / "batch-2.json"
    batch.write_text(json_report.render_many(runs["pass"].lab, [
        TargetRun("carol", "ssh://vagrant@10.0.0.13:22", None, "cannot reach ssh://vagrant@10.0.0.13:22", 3, 1.0)], 3))
    return [alice, bob, batch]


def test_merge_builds_the_class_roster_from_reports_written_elsewhere(runs, tmp_path, capsys):
    import csv

    from checker import cli

    roster, table = tmp_path / "roster.json", tmp_path / "roster.csv"
    code = cli.main(["merge", *map(str, class_reports(runs, tmp_path)), "--report", f"roster:{roster}",
                     "--report", f"csv:{table}", "--no-color"])
    out = capsys.readouterr().out
    assert code == 3  # the class's worst: a machine that could not be reached
    assert "alice" in out and "bob" in out and "carol" in out
    data = json.loads(roster.read_text())
    jsonschema.validate(data, ROSTER_SCHEMA)
    assert [s["student"] for s in data["students"]] == ["alice", "bob", "carol"]
    assert [c["id"] for c in data["claims"]] == [c.id for c in runs["pass"].claims]
    alice, bob, carol = data["students"]
    assert (alice["score"], alice["max"], alice["not_passed"]) == (10.0, 10.0, [])
    assert {n["claim"] for n in bob["not_passed"]} == {"cmd-layer-empty", "image-sizes-equal"}
    assert all(n["hint"] for n in bob["not_passed"]) and bob["verdicts"]["cmd-layer-empty"] == "fail"
    assert carol["result"] == "unreachable" and carol["score"] is None and "cannot reach" in carol["error"]
    # alice's and bob's runs were recorded on one machine: the roster says they share its engine.
    assert alice["same_engine_as"] == ["bob"] and bob["same_engine_as"] == ["alice"] and carol["same_engine_as"] == []
    assert alice["engine_id"] == runs["pass"].engine.engine_id and data["summary"]["sharing_an_engine"] == 2
    rows = list(csv.DictReader(table.open()))
    assert rows[0]["same engine as"] == "bob" and rows[2]["same engine as"] == ""
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert rows[1]["cmd-layer-empty"] == "fail" and rows[1]["score"] == "8" and rows[0]["five-containers-running"] == "pass"
    assert rows[2]["result"] == "unreachable" and rows[2]["cmd-layer-empty"] == ""


def test_merge_names_a_report_after_the_student_it_names(runs, tmp_path, capsys):
    from checker import cli

    data = json.loads(json_report.render(runs["pass"], 0))
    data["identity"]["student"] = "alice"
    report = tmp_path / "report-0.json"
    report.write_text(json.dumps(data))
    roster = tmp_path / "roster.json"
    assert cli.main(["merge", str(report), "--report", f"roster:{roster}"]) == 0
    assert [s["student"] for s in json.loads(roster.read_text())["students"]] == ["alice"]


@pytest.mark.parametrize("mistake,message", [
    ("not-json", "is not JSON"),
    ("not-a-report", "is not a check-lab report"),
    ("other-lab", "is lab 09, "),
    ("same-student", "are both 'alice'"),
    ("missing", "cannot read"),
])
def test_merge_refuses_what_is_not_one_labs_class_and_writes_nothing(runs, tmp_path, capsys, mistake, message):
    from checker import cli

    files = class_reports(runs, tmp_path)
    odd = tmp_path / "odd" / "alice.json"
    odd.parent.mkdir()
    if mistake == "not-json":
        odd.write_text("{")
    elif mistake == "not-a-report":
        odd.write_text(json.dumps({"tests": []}))
    elif mistake == "other-lab":
        data = json.loads(files[0].read_text())
        data["lab"]["id"] = "09"
        odd = tmp_path / "dave.json"
        odd.write_text(json.dumps(data))
    elif mistake == "same-student":
        odd.write_text(files[0].read_text())
    roster = tmp_path / "roster.json"
    code = cli.main(["merge", *map(str, files), str(odd), "--report", f"roster:{roster}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not roster.exists()


@pytest.mark.parametrize("name", ["pass", "extra-run-layer", "observe"])
def test_every_claim_names_its_evidence_and_every_fact_its_source(runs, name):
    """Issue 15: a report says where each fact came from (command, exit status, an excerpt of the output)."""
    report = runs[name]
    data = json.loads(json_report.render(report, for_run(report)))
    steps = {s["id"]: s for s in data["steps"]}
    for claim in data["claims"]:
        if claim["verdict"] in ("pass", "fail"):
            assert claim["evidence"], claim["id"]
        for name_read in claim["evidence"]:
            assert name_read in steps or name_read in data["sources"], (claim["id"], name_read)
    engine = data["sources"]["engine"]
    assert "docker info" in engine["command"] and engine["exit_status"] == 0 and engine["step"] is None
    assert engine["excerpt"].lstrip().startswith("{")
    for fact, src in data["sources"].items():
        assert src["excerpt"] == "" or len(src["excerpt"]) <= 450, fact
        if fact != "engine":
            assert src["step"] in steps, fact
    # A fact gathered after a step: that step, its probe's own command.
    assert data["sources"]["my_image"]["step"] == "build-image"
    assert "my-image:1.0" in data["sources"]["my_image"]["command"]


def test_the_report_names_the_machine_by_its_machine_id(tmp_path):
    """The preflight asks for /etc/machine-id (runner.WHO_AM_I): the report names the machine by it, and says
    null for a machine that has none (the command answers `-`)."""
    from tests.unit.replay import transcript

    data = json.loads(transcript("e1-bookworm-docker20", "pass").read_text())
    first = data["calls"][0] if "command" in data["calls"][0] else next(c for c in data["calls"] if "command" in c)
    assert "id -u" in first["command"]
    # The batch answers each command between boundaries; the who-am-I answer is the first one's: uid, clock,
    # home, machine-id.
    lines = first["result"]["stdout"].split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("/")) + 1
    recorded = lines[at]
    assert len(recorded) == 32 and int(recorded, 16) >= 0
    report = replay("e1-bookworm-docker20", "pass", tmp_path)
    assert report.machine_id == recorded
    assert json_report.to_dict(report, for_run(report))["identity"]["machine_id"] == recorded
    lines[at] = "-"
    first["result"]["stdout"] = "\n".join(lines)
    path = tmp_path / "without-machine-id.json"
    path.write_text(json.dumps(data))
    from checker import lab as labs
    from checker.runner import Runner
    from checker.transcript import ReplayTransport
    from tests.variants import LAB07

    lab = labs.load(LAB07)
    plan = labs.Plan(lab, lab.values({k: str(v) for k, v in data["meta"].get("values", {}).items()}))
    report = Runner(plan, ReplayTransport(path)).run()
    assert report.machine_id is None
    assert json_report.to_dict(report, for_run(report))["identity"]["machine_id"] is None


def test_a_swarm_join_token_never_reaches_a_report():
    from checker.records import Result, StepFact, redact, redacted

    token = "SWMTKN-1-13s9y4pfc3ythf8ivo334rrjuk6sqdqis73xasqjcpn2swcjjx-9f9s4g1gbosni96els2cznwwv"
    said = f"To add a worker to this swarm, run the following command:\n\n    docker swarm join --token {token} 10.0.0.1:2377\n"
    assert redact(said).count("SWMTKN-1-…") == 1 and token[12:] not in redact(said)
    fact = StepFact("init", "init", "docker swarm init", "passed", Result(0, said, "", 1.0))
    assert token not in redacted(fact).result.stdout and token in fact.result.stdout  # the claims' copy is whole
    assert redact("no token here") == "no token here"
