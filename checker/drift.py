"""The course drift report: which of a course's claims and sentences hold on which engine.

`check-lab drift REPORT…` reads JSON reports of the same labs run on several engines (one file per engine:
a run of one lab, or `check-lab course`'s report of many; or a `--targets` report whose targets are the
engines) and writes a lab × engine table: each claim's verdict (pass, fail, not judged, not applicable
here), and each of the lab's sentences that holds only on some engines (its statements), with what is
true instead where it does not hold as written. As Markdown (for a course repository's README or an
issue), one self-contained HTML page, and JSON. Pure records in, text out: no target, no runner.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from checker import __version__
from checker.records import FAIL, NOT_APPLICABLE, NOT_JUDGED, PASS, RunReport

SCHEMA = "check-lab-drift"
VERSION = 1
WORDS = {PASS: "pass", FAIL: "fail", NOT_JUDGED: "not judged", NOT_APPLICABLE: "n/a"}
MARKS = {PASS: "✅", FAIL: "❌", NOT_JUDGED: "⚠️", NOT_APPLICABLE: "➖"}


@dataclass
class EngineRuns:
    label: str
    description: str
    reports: dict[str, RunReport] = field(default_factory=dict)  # lab id -> its run there


def engine_of(label: str, reports: list[RunReport]) -> EngineRuns:
    described = next((r.engine.describe() for r in reports if r.engine), "engine unknown")
    return EngineRuns(label, described, {r.lab.id: r for r in reports})


def table(engines: list[EngineRuns]) -> dict:
    """The drift report as data: per lab, its claims and statements, each with its verdict per engine."""
    labs: dict[str, dict] = {}
    for engine in engines:
        for lab_id, report in sorted(engine.reports.items()):
            lab = labs.setdefault(lab_id, {"id": lab_id, "title": report.lab.title, "claims": {}, "statements": {}})
            for c in report.claims:
                row = lab["claims"].setdefault(c.id, {"id": c.id, "title": c.title, "on": {}})
                row["on"][engine.label] = {"verdict": c.verdict, "observed": c.observed}
            for st in report.statements:
                row = lab["statements"].setdefault(st.id, {"id": st.id, "text": st.title, "on": {}})
                row["on"][engine.label] = {"holds": st.verdict == PASS,
                                           "judged": st.verdict not in (NOT_JUDGED, NOT_APPLICABLE),
                                           "applies": st.verdict != NOT_APPLICABLE, "here": st.observed}
    out_labs = []
    for lab_id in sorted(labs):
        lab = labs[lab_id]
        out_labs.append({"id": lab["id"], "title": lab["title"], "claims": list(lab["claims"].values()),
                         "statements": list(lab["statements"].values())})
    return {"schema": SCHEMA, "version": VERSION, "tool": {"name": "check-lab", "version": __version__},
            "engines": [{"label": e.label, "engine": e.description} for e in engines], "labs": out_labs}


def _cell_md(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(data: dict) -> str:
    engines = [e["label"] for e in data["engines"]]
    lines = ["# The course on today's engines", "",
             "| engine | what it is |", "|---|---|"]
    lines += [f"| {_cell_md(e['label'])} | {_cell_md(e['engine'])} |" for e in data["engines"]]
    lines.append("")
    for lab in data["labs"]:
        lines += [f"## Lab {_cell_md(lab['id'])} – {_cell_md(lab['title'])}", "",
                  "| claim | " + " | ".join(map(_cell_md, engines)) + " |",
                  "|---|" + "---|" * len(engines)]
        for c in lab["claims"]:
            cells = [(MARKS[c["on"][e]["verdict"]] + " " + WORDS[c["on"][e]["verdict"]]) if e in c["on"] else "–"
                     for e in engines]
            lines.append(f"| {_cell_md(c['title'])} (`{c['id']}`) | " + " | ".join(cells) + " |")
        lines.append("")
        drifting = [st for st in lab["statements"] if any(not v["holds"] and v["judged"] for v in st["on"].values())]
        if lab["statements"]:
            lines += ["| the lab's text | " + " | ".join(map(_cell_md, engines)) + " |",
                      "|---|" + "---|" * len(engines)]
            for st in lab["statements"]:
                cells = []
                for e in engines:
                    v = st["on"].get(e)
                    cells.append("–" if v is None else "holds" if v["holds"] else
                                 "n/a" if not v.get("applies", True) else
                                 "not judged" if not v["judged"] else "**does not hold**")
                lines.append(f"| {_cell_md(st['text'])} | " + " | ".join(cells) + " |")
            lines.append("")
        if drifting:
            lines += ["What is true instead:", ""]
            for st in drifting:
                for e in engines:
                    v = st["on"].get(e)
                    if v and v["judged"] and not v["holds"]:
                        lines.append(f"- {_cell_md(st['text'])} – on {_cell_md(e)}: {_cell_md(v['here'])}")
            lines.append("")
    return "\n".join(lines) + "\n"


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.pass { background: #e6f4e6; } td.fail { background: #fbe3e3; font-weight: bold; }
td.error { background: #fff4d6; } td.na { background: #eee; color: #666; }
td.holds { background: #e6f4e6; } td.drifts { background: #fbe3e3; } td.drifts .here { display: block; color: #444;
font-weight: normal; font-size: .92em; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def page(data: dict) -> str:
    engines = [e["label"] for e in data["engines"]]
    parts = ["<h1>The course on today's engines</h1>",
             "<table id=\"engines\"><thead><tr><th>engine</th><th>what it is</th></tr></thead><tbody>"]
    parts += [f"<tr><td>{_e(e['label'])}</td><td>{_e(e['engine'])}</td></tr>" for e in data["engines"]]
    parts.append("</tbody></table>")
    heads = "".join(f'<th scope="col">{_e(e)}</th>' for e in engines)
    for lab in data["labs"]:
        parts.append(f'<h2 id="lab-{_e(lab["id"])}">Lab {_e(lab["id"])} – {_e(lab["title"])}</h2>')
        parts.append(f'<table class="claims" data-lab="{_e(lab["id"])}"><thead><tr><th>claim</th>{heads}</tr></thead><tbody>')
        for c in lab["claims"]:
            cells = []
            for e in engines:
                v = c["on"].get(e)
                if v is None:
                    cells.append('<td data-verdict="">–</td>')
                else:
                    cls = "na" if v["verdict"] == NOT_APPLICABLE else v["verdict"]
                    cells.append(f'<td class="{cls}" data-verdict="{_e(v["verdict"])}" title="{_e(v["observed"])}">'
                                 f'{MARKS[v["verdict"]]} {WORDS[v["verdict"]]}</td>')
            parts.append(f'<tr data-claim="{_e(c["id"])}"><th scope="row">{_e(c["title"])} '
                         f'<code>{_e(c["id"])}</code></th>{"".join(cells)}</tr>')
        parts.append("</tbody></table>")
        if lab["statements"]:
            parts.append(f'<table class="statements" data-lab="{_e(lab["id"])}"><thead><tr><th>the lab\'s text</th>'
                         f'{heads}</tr></thead><tbody>')
            for st in lab["statements"]:
                cells = []
                for e in engines:
                    v = st["on"].get(e)
                    if v is None:
                        cells.append("<td>–</td>")
                    elif v["holds"]:
                        cells.append('<td class="holds" data-holds="yes">holds</td>')
                    elif not v.get("applies", True):
                        cells.append(f'<td class="na" data-holds="n/a" title="{_e(v["here"])}">n/a</td>')
                    elif not v["judged"]:
                        cells.append('<td class="error" data-holds="unknown">not judged</td>')
                    else:
                        cells.append(f'<td class="drifts" data-holds="no">does not hold'
                                     f'<span class="here">{_e(v["here"])}</span></td>')
                parts.append(f'<tr data-statement="{_e(st["id"])}"><th scope="row">{_e(st["text"])}</th>'
                             f'{"".join(cells)}</tr>')
            parts.append("</tbody></table>")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>The course on today's engines – check-lab</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")


def render_json(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"
