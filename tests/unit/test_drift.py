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
    assert data["schema"] == "check-lab-drift" and [e["label"] for e in data["engines"]] == ["E1", "E2", "E3"]
    [lab] = data["labs"]
    assert lab["id"] == "07" and len(lab["claims"]) == 10
    assert all(c["on"][e]["verdict"] == "pass" for c in lab["claims"] for e in ("E1", "E2", "E3"))
    by_text = {st["text"]: st["on"] for st in lab["statements"]}
    assert [by_text[BUILD][e]["holds"] for e in ("E1", "E2", "E3")] == [True, False, False]
    assert "BuildKit builds" in by_text[BUILD]["E2"]["here"]
    assert not any(on["E1"]["holds"] is False for on in by_text.values())  # E1 is the engine the course was written for

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables = [t for t in tokens if t.type == "table_open"]
    assert len(tables) == 3  # the engines, lab 07's claims, its text
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == (1 + 3) + (1 + 10) + (1 + len(lab["statements"]))
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
