"""The grader's commands over reports written elsewhere (no target, no runner):

    check-lab merge REPORT… [--report FORMAT:FILE]… [--key KEY.pub]   one lab's reports into one class (the roster)
    check-lab verify REPORT… --key KEY.pub                              signed with the grader's key, unchanged?
    check-lab drift REPORT… [--markdown F] [--html F] [--json F]       one report per engine: the drift report

Exit codes as check-lab's (checker/exitcodes.py): merge as --targets, verify 0 or 1, drift 0; 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from checker import reporters
from checker.errors import UsageError
from checker.exitcodes import ExitStatus, for_targets


def _public_key(path: str, flag: str = "--key"):
    from checker.signing import SigningKeyError, load_public

    try:
        return load_public(path)
    except SigningKeyError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _read_json(name: str, what: str) -> dict:
    import json
    from pathlib import Path

    try:
        text = sys.stdin.read() if name == "-" else Path(name).expanduser().read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {name}: {exc.strerror or exc}") from None
    except ValueError:
        raise UsageError(f"{what}: {name} is not JSON") from None


def verify(argv: list[str]) -> int:
    """`check-lab verify REPORT… --key KEY.pub`: 0 when every report was signed with the grader's key and not
    changed since, 1 when one was not (one line each, why), 2 on usage errors."""
    from checker.signing import verify as verified

    parser = argparse.ArgumentParser(prog="check-lab verify", description="Check that JSON reports were signed "
                                     "with the grader's key (--sign) and not changed since.")
    parser.add_argument("reports", nargs="+", metavar="REPORT")
    parser.add_argument("--key", required=True, metavar="KEY.pub", help="the grader's Ed25519 public key")
    args = parser.parse_args(argv)
    key = _public_key(args.key)
    bad = 0
    for name in args.reports:
        data = _read_json(name, "verify")
        why = verified(data, key)
        if why:
            bad += 1
            print(f"{name}: NOT VALID: {why}")
            continue
        identity = data.get("identity") or {}
        seen = ", ".join(f"{k} {v}" for k, v in (("engine", identity.get("engine_id")), ("host", identity.get("host")),
                                                  ("machine", identity.get("machine_id")),
                                                  ("nonce", identity.get("nonce"))) if v)
        print(f"{name}: valid: signed with this key, unchanged" + (f" ({seen})" if seen else ""))
    return ExitStatus.FAILED if bad else ExitStatus.OK


def drift(argv: list[str]) -> int:
    """`check-lab drift REPORT…`: the course's claims and sentences on several engines, from a JSON report per
    engine (named after its file), or one `--targets` report whose targets are the engines."""
    from pathlib import Path

    from checker import drift as drifts
    from checker.reporters import atomic_write, json_report

    parser = argparse.ArgumentParser(prog="check-lab drift", description="Which claims and sentences of the "
                                     "course hold on which engine: a lab × engine table.")
    parser.add_argument("reports", nargs="+", metavar="REPORT",
                        help="JSON reports (- for standard input): one per engine (a lab's run, or check-lab "
                             "course's), or a --targets report with one target per engine (a lab's, or check-lab "
                             "course --targets')")
    parser.add_argument("--markdown", metavar="FILE", help="the table as Markdown (- for standard output, the default)")
    parser.add_argument("--html", metavar="FILE", help="the table as one self-contained HTML page")
    parser.add_argument("--json", metavar="FILE", help="the table as JSON (schema check-lab-drift)")
    args = parser.parse_args(argv)
    engines: list = []
    for name in args.reports:
        data = _read_json(name, "drift")
        if isinstance(data, dict) and data.get("schema") == json_report.SCHEMA and data.get("kind") == "engines":
            # The course on several engines (check-lab course --targets): one engine per target.
            engines += [drifts.engine_of(label, reports) for label, reports in json_report.engines_from(data)
                        if reports]
            continue
        try:
            _lab, runs = json_report.runs_from(data, Path(name).stem)
        except ValueError as exc:
            raise UsageError(f"drift: {name} is {exc}") from None
        if data.get("kind") == "targets":  # one engine per target
            engines += [drifts.engine_of(r.label, [r.report]) for r in runs if r.report is not None]
        else:  # one engine: a lab's run, or the labs of the course
            engines.append(drifts.engine_of(Path(name).stem, [r.report for r in runs if r.report is not None]))
    labels = [e.label for e in engines]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise UsageError(f"drift: more than one report for the engine {twice[0]!r} (name the files after the engines)")
    data = drifts.table(engines)
    outputs = [(args.markdown or ("-" if not (args.html or args.json) else None), drifts.markdown(data)),
               (args.html, drifts.page(data)), (args.json, drifts.render_json(data))]
    for destination, text in outputs:
        if destination == "-":
            sys.stdout.write(text)
        elif destination:
            atomic_write(Path(destination).expanduser(), text)
    return ExitStatus.OK


def merge(argv: list[str]) -> int:
    """`check-lab merge REPORT…`: JSON reports written elsewhere (a student's machine, a CI job of a matrix),
    read back into one class: the roster and every other format, as `--targets` writes them."""
    from pathlib import Path

    from rich.console import Console

    from checker.reporters import json_report
    from checker.reporters.console import ConsoleReporter

    parser = argparse.ArgumentParser(prog="check-lab merge", description="Merge JSON reports of one lab into "
                                     "one class: a student per single report (named after its file), each "
                                     "target of a report of many.")
    parser.add_argument("reports", nargs="+", metavar="REPORT", help="JSON reports (--report json:FILE)")
    parser.add_argument("--report", dest="reports_out", action="append", default=[], metavar="FORMAT:FILE",
                        help=f"write a report (repeatable; FILE - for standard output): {reporters.help_text()}")
    parser.add_argument("--key", metavar="KEY.pub", help="take only reports signed with this key (the grader's "
                        "Ed25519 public key) and not changed since")
    parser.add_argument("--no-color", action="store_true")
    args = parser.parse_args(argv)
    requests = [reporters.parse_request(value) for value in args.reports_out]
    key = _public_key(args.key) if args.key else None
    if sum(1 for r in requests if reporters.on_stdout(r)) > 1:
        raise UsageError("only one report can go to standard output")
    if any(r.format == "gradescope" for r in requests):
        raise UsageError("--report gradescope is one student's submission: a merged class writes roster, csv, "
                         "json, junit or tap")
    lab, runs, seen = None, [], {}
    for name in args.reports:
        path = Path(name).expanduser()
        data = _read_json(name, "merge")
        if key is not None:
            from checker.signing import verify as verified

            why = verified(data, key)
            if why:
                raise UsageError(f"merge: {name}: {why}")
        try:
            # A single report is the student it names (--student), else the student its file is named after.
            student = (data.get("identity") or {}).get("student") if isinstance(data, dict) else None
            this_lab, these = json_report.runs_from(data, student or path.stem)
        except ValueError as exc:  # not a report
            raise UsageError(f"merge: {name} is {exc}") from None
        if data.get("kind") == "course":
            raise UsageError(f"merge: {name} holds several labs (check-lab course): merge reports of one lab")
        if lab is not None and this_lab.id != lab.id:
            raise UsageError(f"merge: {name} is lab {this_lab.id}, {seen[runs[0].label]} is lab {lab.id}: "
                             "a class roster is one lab's")
        lab = lab or this_lab
        for run in these:
            if run.label in seen:
                raise UsageError(f"merge: {name} and {seen[run.label]} are both {run.label!r}")
            seen[run.label] = name
            runs.append(run)
    code = for_targets(r.exit_code for r in runs)
    console = ConsoleReporter(Console(highlight=False, no_color=args.no_color or None,
                                      stderr=any(map(reporters.on_stdout, requests))))
    console.header(lab.name, f"{len(runs)} students from {len(args.reports)} report(s)")
    console.render_many(runs, code, 0.0, noun="students")
    reporters.write_many(requests, lab, runs, code)
    return code
