"""The class roster as one self-contained HTML page (`--report html:FILE`): the students × claims matrix of
checker/reporters/roster.py, a row per student with a cell per claim, sortable by clicking a column's head
(student, score, result, or a claim: the students its verdict fails first), and under the table each
student's claims that did not hold, with what was observed and the hint. No file, font or script is
fetched from anywhere: it reads the same offline, mailed, or from a CI artifact."""

from __future__ import annotations

import html

from checker.records import LabInfo, RunReport, TargetRun
from checker.reporters.roster import matrix

MARKS = {"pass": ("✓", "pass"), "fail": ("✗", "fail"), "error": ("?", "not judged"), "n/a": ("–", "not applicable here")}
# Sorting by a claim puts first who needs help: failed, then not judged, then n/a, then passed, then unchecked.
RANK = {"fail": 0, "error": 1, "n/a": 3, "pass": 4}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
p.summary { margin: 0 0 1em; color: #555; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: center; white-space: nowrap; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th.claim { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; max-height: 16em;
           white-space: normal; font-weight: normal; }
th[aria-sort=ascending]::after { content: " ▲"; } th[aria-sort=descending]::after { content: " ▼"; }
td.student, td.target { text-align: left; }
td.pass { background: #e6f4e6; color: #1a6b1a; } td.fail { background: #fbe3e3; color: #a11; font-weight: bold; }
td.error { background: #fff4d6; color: #8a6100; } td.na { background: #eee; color: #777; }
td.unreachable { background: #fbe3e3; color: #a11; }
.shared { color: #b35c00; font-weight: bold; }
section.student { margin: 1em 0; } section.student h2 { font-size: 1.05em; margin: 0 0 .3em; }
dl { margin: 0 0 0 1em; } dt { font-weight: bold; } dd { margin: 0 0 .5em 1em; }
dd .hint { color: #235; } dd .observed { color: #444; }
"""

SCRIPT = """
(function () {
  var table = document.getElementById("roster");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function key(row, index, kind) {
    var cell = row.cells[index];
    var value = cell.getAttribute("data-sort");
    return kind === "text" ? value : parseFloat(value);
  }
  Array.prototype.forEach.call(heads, function (head, index) {
    head.addEventListener("click", function () {
      var kind = head.getAttribute("data-kind");
      var descending = head.getAttribute("aria-sort") === "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      head.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, index, kind), y = key(b, index, kind);
        var order = kind === "text" ? x.localeCompare(y) : x - y;
        if (order === 0) { order = a.cells[0].textContent.localeCompare(b.cells[0].textContent); }
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
"""


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def page(data: dict) -> str:
    claims = data["claims"]
    lab = data["lab"]
    heads = ['<th data-kind="text" scope="col">student</th>', '<th data-kind="number" scope="col">score</th>',
             '<th data-kind="text" scope="col">result</th>']
    heads += [f'<th class="claim" data-kind="number" data-claim="{_esc(c["id"])}" scope="col" '
              f'title="{_esc(c["title"])}">{_esc(c["id"])}</th>' for c in claims]
    rows = []
    for s in data["students"]:
        score = "" if s["score"] is None else f'{s["score"]:g}/{s["max"]:g}'
        shared = (f' <span class="shared" title="the same Docker engine as {_esc(", ".join(s["same_engine_as"]))}">'
                  '⚠</span>' if s["same_engine_as"] else "")
        cells = [f'<td class="student" data-sort="{_esc(s["student"])}">'
                 f'<a href="#student-{_esc(s["student"])}">{_esc(s["student"])}</a>{shared}</td>',
                 f'<td data-sort="{-1 if s["score"] is None else s["score"]}">{score or "–"}</td>',
                 f'<td class="{"unreachable" if s["score"] is None else ""}" data-sort="{_esc(s["result"])}">'
                 f'{_esc(s["result"])}</td>']
        for c in claims:
            verdict = s["verdicts"].get(c["id"])
            if verdict is None:
                cells.append('<td data-sort="5"></td>')
                continue
            mark, word = MARKS[verdict]
            cells.append(f'<td class="{"na" if verdict == "n/a" else verdict}" data-sort="{RANK[verdict]}" '
                         f'data-verdict="{verdict}" title="{_esc(c["id"])}: {word}">{mark}</td>')
        rows.append(f'<tr data-student="{_esc(s["student"])}">{"".join(cells)}</tr>')
    sections = []
    for s in data["students"]:
        if s["score"] is None:
            body = f'<p class="error">Not checked: {_esc(s["error"] or "unreachable")}</p>'
        elif not s["not_passed"]:
            body = "<p>Every claim holds.</p>" if s["result"] == "pass" else f'<p>{_esc(s["error"] or "")}</p>'
        else:
            items = "".join(
                f'<dt data-claim="{_esc(n["claim"])}">{_esc(n["title"])} ({_esc(n["claim"])}): {_esc(n["verdict"])}</dt>'
                f'<dd><div class="observed">observed: {_esc(n["observed"])}</div>'
                + (f'<div class="hint">hint: {_esc(n["hint"])}</div>' if n["hint"] else "") + "</dd>"
                for n in s["not_passed"])
            body = f"<dl>{items}</dl>"
        points = "" if s["score"] is None else f' – {s["score"]:g}/{s["max"]:g}'
        if s["same_engine_as"]:
            body = (f'<p class="shared">Checked on the same Docker engine as {_esc(", ".join(s["same_engine_as"]))} '
                    f'(engine ID {_esc(s["engine_id"])}): one machine, or copies of one.</p>') + body
        sections.append(f'<section class="student" id="student-{_esc(s["student"])}" data-student='
                        f'"{_esc(s["student"])}"><h2>{_esc(s["student"])} – {_esc(s["result"])}{points}</h2>'
                        f'{body}</section>')
    summary = data["summary"]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>check-lab {_esc(lab["id"])} – {_esc(lab["title"])}: class roster</title>
<style>{STYLE}</style>
</head>
<body>
<h1>check-lab {_esc(lab["id"])} – {_esc(lab["title"])}: class roster</h1>
<p class="summary">{summary["passed"]} of {summary["students"]} students pass · {summary["unreachable"]} not checked ·
click a column's head to sort (a claim: who failed it first)</p>
<table id="roster">
<thead><tr>{"".join(heads)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<h1>What did not hold, student by student</h1>
{chr(10).join(sections)}
<script>{SCRIPT}</script>
</body>
</html>
"""


def render(report: RunReport, exit_code: int) -> str:
    run = TargetRun(report.target, report.target, report, None, exit_code, report.duration)
    return render_many(report.lab, [run], exit_code)


def render_many(lab: LabInfo, runs: list[TargetRun], exit_code: int, kind: str = "targets") -> str:
    return page(matrix(lab, runs, exit_code, kind))
