"""The drift report (`check-lab drift`): lab 07's recorded runs on the suite's three engines, their JSON
reports read back into a lab × engine table: Markdown read by a Markdown parser, JSON, refusals; and the
README's copy is what the command gives (tests/drift_readme.py)."""

from __future__ import annotations

import json

import pytest

from checker import cli
from tests import drift_readme

BUILD = "`docker build` prints `Step 1/2 : …` lines and `Successfully built <id>`"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return drift_readme.reports(tmp_path_factory.mktemp("engines"))


def test_the_table_says_which_sentence_holds_on_which_engine(reports, tmp_path, capsys):
    from markdown_it import MarkdownIt

    out = tmp_path / "drift.json"
    assert cli.main(["drift", *map(str, reports), "--json", str(out), "--markdown", "-"]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["schema"] == "check-lab-drift" and [e["label"] for e in data["engines"]] == ["E1", "E2", "E3", "E4", "E5"]
    [lab] = data["labs"]
    assert lab["id"] == "07" and len(lab["claims"]) == 10
    assert all(c["on"][e]["verdict"] == "pass" for c in lab["claims"] for e in ("E1", "E2", "E3", "E4", "E5"))
    by_text = {st["text"]: st["on"] for st in lab["statements"]}
    assert [by_text[BUILD][e]["holds"] for e in ("E1", "E2", "E3", "E4", "E5")] == [True, False, False, False, False]
    assert "BuildKit builds" in by_text[BUILD]["E2"]["here"]
    pulls = by_text["`docker pull` prints one `Pull complete` line per layer"]
    assert [pulls[e]["holds"] for e in ("E1", "E2", "E3", "E4", "E5")] == [True, True, False, True, True]
    assert not any(on["E1"]["holds"] is False for on in by_text.values())  # E1 is the engine the course was written for

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables = [t for t in tokens if t.type == "table_open"]
    assert len(tables) == 3  # the engines, lab 07's claims, its text
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == (1 + 5) + (1 + 10) + (1 + len(lab["statements"]))
    inline = [t.content for t in tokens if t.type == "inline"]
    assert f"{BUILD} – on E2: {by_text[BUILD]['E2']['here']}" in inline


def test_the_readme_shows_what_the_command_gives():
    assert drift_readme.main(["--check"]) == 0, "README's drift report is stale: python -m tests.drift_readme"


def test_two_reports_of_one_engine_or_not_a_report_are_refused(reports, tmp_path, capsys):
    twin = tmp_path / "again" / "E1.json"
    twin.parent.mkdir()
    twin.write_text(reports[0].read_text())
    assert cli.main(["drift", *map(str, reports), str(twin)]) == 2
    assert "more than one report for the engine 'E1'" in capsys.readouterr().err
    odd = tmp_path / "E4.json"
    odd.write_text("{}")
    assert cli.main(["drift", str(reports[0]), str(odd)]) == 2
    assert "drift: " in capsys.readouterr().err


def test_the_course_on_several_engines_at_once_gives_the_drift_report(monkeypatch, tmp_path, capsys):
    """`check-lab course --targets ENGINES --report json:-` (one target per engine, replayed from each engine's
    recorded run of lab 07), piped into `check-lab drift -`: the same table as from one report per engine."""
    import io
    from pathlib import Path

    import jsonschema

    from checker.reporters import json_report
    from checker.transcript import ReplayTransport
    from tests.unit.replay import transcript

    engines = dict(drift_readme.ENGINES)
    from checker.targets import file as targets_file

    monkeypatch.setattr(targets_file, "open_target",
                        lambda options: ReplayTransport(transcript(engines[options.spec.split("//", 1)[1]], "pass")))
    listing = tmp_path / "engines.txt"
    listing.write_text("".join(f"{label} = docker://{label}\n" for label in engines))
    assert cli.main(["course", "--labs", "07", "--targets", str(listing), "--report", "json:-", "--no-color"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    schema = json.loads((Path(json_report.__file__).parent.parent / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["kind"] == "engines" and [t["label"] for t in data["targets"]] == ["E1", "E2", "E3", "E4", "E5"]
    assert "E2: 1 of 1 labs passed (Docker 26.1.5+dfsg1, overlay2 storage driver, buildkit builder" in \
        " ".join(captured.err.split())
    monkeypatch.setattr("sys.stdin", io.StringIO(captured.out))
    assert cli.main(["drift", "-", "--json", str(tmp_path / "drift.json")]) == 0
    table = json.loads((tmp_path / "drift.json").read_text())
    assert [e["label"] for e in table["engines"]] == ["E1", "E2", "E3", "E4", "E5"]
    by_text = {st["text"]: st["on"] for st in table["labs"][0]["statements"]}
    assert [by_text[BUILD][e]["holds"] for e in ("E1", "E2", "E3")] == [True, False, False]
    # What only a grader's options mean is refused in one line, before anything runs.
    assert cli.main(["course", "--targets", str(listing), "--report", "roster:-"]) == 2
    assert "writes a JSON report" in capsys.readouterr().err
