"""check-lab: parse → open the target (connecting in the background) → load and validate the lab → run →
render. Exit codes: checker/exitcodes.py (the same policy as lab-env's).

Only the standard library and the tables of targets and formats are imported before the target is known,
so `check-lab --help` stays fast and the SSH handshake starts before the lab, the runner and the
renderers are loaded.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from checker import __version__
from checker import reporters, targets
from checker.errors import CheckLabError, UsageError
from checker.exitcodes import ExitStatus, for_run, for_targets


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a cancelled CI job, `timeout`, a closed terminal): ends a run like Ctrl-C does,
    cleanup first; the exit code names the signal (143, 129)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.signal = name


def _on_signal(signum, _frame) -> None:
    raise Terminated(signal.Signals(signum).name)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="check-lab",
        description="Run a lab of the Docker course on the lab machine and check every claim the lab makes.",
        epilog="`check-lab list` lists the labs. Exit codes: 0 all claims hold, 1 a claim failed, "
               "2 usage or lab error, 3 target not reachable or not ready, 4 internal error, "
               "129/130/143 ended by SIGHUP/Ctrl-C/SIGTERM (after cleaning up).",
    )
    p.add_argument("lab", help="a lab id (07) or the path of a lab folder; `course`: the course's labs in order "
                                "(see --labs); `list` lists the labs")
    p.add_argument("--target", metavar="SPEC", help=f"where the lab runs: {targets.help_text()}")
    p.add_argument("--targets", metavar="FILE",
                   help="check many targets (a list of target specs, or an OpenSSH config file's hosts); see -j")
    p.add_argument("-j", "--jobs", type=int, default=4, metavar="N", help="with --targets: N targets at once")
    p.add_argument("--identity", "-i", metavar="FILE", help="private key for an ssh:// target")
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file for ssh:// targets (default ~/.ssh/known_hosts)")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="ssh:// targets: trust and remember an unknown host key (a changed key is still refused)")
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[],
                   help="override a lab variable (see `check-lab list -v`)")
    p.add_argument("--report", dest="reports", action="append", metavar="FORMAT:FILE", default=[],
                   help=f"write a report (FILE - for standard output); formats: {reporters.help_text()}")
    p.add_argument("--json", metavar="FILE", help="the same as --report json:FILE")
    p.add_argument("--junit", metavar="FILE", help="the same as --report junit:FILE")
    p.add_argument("--observe", action="store_true",
                   help="run no lab step: judge the state the student left (their images and containers); "
                        "nothing on the target is changed")
    p.add_argument("--watch", action="store_true",
                   help="you do the lab in your own terminal; the checker follows the engine's events and ticks "
                        "each claim as it holds (changes nothing; Ctrl-C when you are done)")
    p.add_argument("--watch-timeout", type=float, metavar="SECONDS",
                   help="with --watch: stop watching after this long, and judge what was seen")
    p.add_argument("--replace", action="store_true",
                   help="if the lab's containers or images exist already, set them aside during the check and "
                        "put them back afterwards (without it, the check stops)")
    p.add_argument("--timeout", dest="timeouts", action="append", metavar="STEP=SECONDS", default=[],
                   help="override one step's timeout")
    p.add_argument("--timeout-factor", type=float, default=1.0, metavar="X",
                   help="multiply every step's timeout (slow machines: 3)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="give up on an SSH connection (TCP, banner, authentication) after this long")
    p.add_argument("--lock-wait", type=float, default=300.0, metavar="SECONDS",
                   help="if another check-lab run is using the machine, wait this long for it (default 300)")
    p.add_argument("--labs", metavar="IDS", help="with `course`: the labs to run, e.g. 02-06,08 (default: all)")
    p.add_argument("--lab-dir", metavar="DIR", help="look for labs in DIR")
    p.add_argument("--student", metavar="ID", help="the student whose machine this must be: its engine is labelled "
                   "check-lab.student=ID (LAB_STUDENT=ID when provisioned); another's is refused (exit 3)")
    p.add_argument("--sign", metavar="KEY", help="sign the JSON reports with this Ed25519 private key (the "
                   "grader's; check-lab verify REPORT --key KEY.pub checks them)")
    p.add_argument("--nonce", metavar="TEXT", help="a value of the grader's that the report carries (default: drawn "
                   "for this run), so a report of another run cannot stand in for this one")
    p.add_argument("--record", metavar="FILE", help="write a transcript of every remote command (for tests)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every step's output")
    p.add_argument("--no-color", action="store_true", help="no colours")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"check-lab {__version__}")
    return p


def _console(args):
    from rich.console import Console

    return Console(highlight=False, no_color=args.no_color or None, stderr=getattr(args, "console_to_stderr", False))


def report_requests(args) -> list[reporters.ReportRequest]:
    requests = [reporters.parse_request(value) for value in args.reports]
    if args.json:
        requests.append(reporters.parse_request(f"json:{args.json}", "--json"))
    if args.junit:
        requests.append(reporters.parse_request(f"junit:{args.junit}", "--junit"))
    if sum(1 for r in requests if reporters.on_stdout(r)) > 1:
        raise UsageError("only one report can go to standard output")
    if args.targets and any(r.format == "gradescope" for r in requests):
        raise UsageError("--report gradescope is one student's submission: with --targets write json, junit or tap")
    # A report on standard output keeps it to itself: what the terminal shows goes to standard error.
    args.console_to_stderr = any(reporters.on_stdout(r) for r in requests)
    if args.nonce is not None and not args.nonce.strip():
        raise UsageError("--nonce: give a value (or leave it out: one is drawn)")
    if args.student is not None:
        import re

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}", args.student):
            raise UsageError(f"--student {args.student!r}: a student's ID is letters, digits and . _ @ + - "
                             "(at most 64)")
        if args.targets:
            raise UsageError("--student names one student's machine: with --targets, check each with its own")
    if args.sign:
        from dataclasses import replace

        from checker.signing import SigningKeyError, load_private

        if not any(r.format == "json" for r in requests):
            raise UsageError("--sign signs JSON reports: add --report json:FILE")
        try:
            key = load_private(args.sign)
        except SigningKeyError as exc:
            raise UsageError(f"--sign: {exc}") from None
        requests = [replace(r, sign=key) if r.format == "json" else r for r in requests]
    return requests


def stamp(report, args) -> None:
    """The run's nonce on its report: the grader's (--nonce), else one drawn once for this invocation."""
    import secrets

    if report is not None:
        if getattr(args, "drawn_nonce", None) is None:
            args.drawn_nonce = args.nonce or secrets.token_hex(16)
        report.nonce = args.drawn_nonce
        report.student = args.student


def _output_path(value: str | None, flag: str):
    if not value:
        return None
    request = reporters.parse_request(f"json:{value}", flag)
    from pathlib import Path

    return Path(request.destination).expanduser()


def _timeouts(pairs: list[str], lab) -> dict[str, float]:
    out = {}
    step_ids = {s.id for s in lab.steps}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--timeout {pair!r}: expected STEP=SECONDS")
        if key not in step_ids:
            raise UsageError(f"--timeout {pair!r}: lab {lab.id} has no step {key!r}")
        try:
            seconds = float(value)
        except ValueError:
            raise UsageError(f"--timeout {pair!r}: {value!r} is not a number of seconds") from None
        if seconds <= 0:
            raise UsageError(f"--timeout {pair!r}: must be positive")
        out[key] = seconds
    return out


def list_labs(argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from checker import lab as labs

    parser = argparse.ArgumentParser(prog="check-lab list", description="List the labs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each lab's variables")
    parser.add_argument("--lab-dir", metavar="DIR")
    args = parser.parse_args(argv)
    found = labs.available(args.lab_dir)
    console = Console(highlight=False)
    if not found:
        console.print("no labs found (looked in: " + ", ".join(map(str, labs.lab_roots(args.lab_dir))) + ")")
        return ExitStatus.USAGE
    table = Table("lab", "title", "machines", "needs", "claims", box=None, header_style="bold")
    for lab in found:
        plan = labs.Plan(lab, lab.preview_values())
        pulls = plan.resources("pulls")
        needs = ([f"pulls {', '.join(pulls)}"] if pulls else []) + list(lab.needs)
        table.add_row(lab.id, lab.title, ", ".join(lab.machines), "; ".join(needs) or "–", str(len(lab.claims)))
    console.print(table)
    if args.verbose:
        for lab in found:
            for var in lab.variables.values():
                given = "required" if var.required else f"default {var.default!r}"
                console.print(f"  {lab.id}: --set {var.name}=… ({given}) {var.description}")
    return ExitStatus.OK


def run_check(args) -> int:
    if args.timeout_factor <= 0:
        raise UsageError("--timeout-factor must be positive")
    if args.connect_timeout <= 0 or args.lock_wait < 0:
        raise UsageError("--connect-timeout must be positive and --lock-wait not negative")
    requests = report_requests(args)
    record_path = _output_path(args.record, "--record")
    if args.watch and (args.targets or args.replace or args.observe):
        raise UsageError("--watch follows one machine and changes nothing: leave out --targets, --replace, --observe")
    if args.watch_timeout is not None and (not args.watch or args.watch_timeout <= 0):
        raise UsageError("--watch-timeout goes with --watch, and must be positive")
    options = targets.TargetOptions(args.target, args.identity, args.known_hosts, args.accept_new_host_key,
                                    args.connect_timeout)
    transport = None
    if not args.targets:
        # Connect first (in the background) when the target is known without asking anything slow.
        transport = targets.open_quickly(options)
        if transport is not None and hasattr(transport, "start_connecting"):
            transport.start_connecting()
            # Nothing else runs meanwhile (threads share one interpreter): the handshake gets it to itself.
            transport.settle()
    try:
        from checker import lab as labs

        if args.lab == "course":
            return run_course_cli(args, requests, options)
        lab = labs.find(args.lab, args.lab_dir)
        plan = labs.Plan(lab, lab.values(labs.parse_sets(args.sets)), student=args.student)
        runner_options = dict(replace=args.replace, timeout_factor=args.timeout_factor,
                              step_timeouts=_timeouts(args.timeouts, lab), lock_wait=args.lock_wait,
                              observe=args.observe, student=args.student)
        if not lab.on_one_machine:
            if transport is not None:
                transport.close()
            return run_machines(args, plan, runner_options, requests, options)
        if args.targets:
            return run_many(args, plan, runner_options, requests)
        if transport is None:
            transport = targets.open_target(options)
            if hasattr(transport, "start_connecting"):
                transport.start_connecting()
    except BaseException:
        if transport is not None:
            transport.close()
        raise

    from checker.reporters.console import ConsoleReporter
    from checker.runner import Runner

    console = ConsoleReporter(_console(args), verbose=args.verbose)
    if args.watch:
        from checker.reporters.console import WatchView
        from checker.watch import Watch

        report = Watch(plan, transport, WatchView(console.console), timeout=args.watch_timeout,
                       student=args.student).run()
        stamp(report, args)
        code = for_run(report)
        console.render(report, code)
        reporters.write_single(requests, report, code)
        if code != ExitStatus.OK:
            print(f"check-lab: {why_not(report)}", file=sys.stderr)
        return code
    if record_path:
        from checker.transcript import RecordingTransport

        transport = RecordingTransport(transport, record_path, {"lab": lab.id, "values": plan.values,
                                                                "observe": args.observe})
    console.header(lab.name + (" (observe mode)" if args.observe else ""), transport.description)
    return run_and_report(Runner(plan, transport, events=console, **runner_options), console, requests, args)


def run_and_report(runner, console, requests, args) -> int:
    """Run, render, write the reports asked for, say why not in one line; the exit code."""
    try:
        report = runner.run()
    finally:
        console.close()
    stamp(report, args)
    code = for_run(report)
    console.render(report, code)
    reporters.write_single(requests, report, code)
    if code != ExitStatus.OK:
        print(f"check-lab: {why_not(report)}", file=sys.stderr)
    return code


def run_machines(args, plan, runner_options: dict, requests, options) -> int:
    """A lab over several machines (labs 11 and 12: the course's swarm), one session per machine."""
    from checker.reporters.console import ConsoleReporter
    from checker.runner import MachinesRunner

    lab = plan.lab
    if args.watch:
        raise UsageError(f"lab {lab.id} runs on {', '.join(lab.machines)}: --watch follows one machine; leave it out")
    if args.targets:
        return run_many(args, plan, runner_options, requests)
    record_path = _output_path(args.record, "--record")
    transports = targets.open_machines(options, lab.machines)
    if record_path:  # one transcript per machine: PATH.MACHINE.json
        from checker.transcript import RecordingTransport

        transports = {name: RecordingTransport(t, machine_transcript(record_path, name),
                                               {"lab": lab.id, "values": plan.values, "machine": name,
                                                "observe": args.observe})
                      for name, t in transports.items()}
    console = ConsoleReporter(_console(args), verbose=args.verbose)
    runner = MachinesRunner(plan, transports, events=console, **runner_options)
    console.header(lab.name + (" (observe mode)" if args.observe else ""), runner.description)
    return run_and_report(runner, console, requests, args)


def machine_transcript(path, machine: str):
    """Where `--record PATH` keeps one machine's transcript of a lab over several: PATH.MACHINE.json."""
    from pathlib import Path

    path = Path(path)
    stem = path.name[:-5] if path.name.endswith(".json") else path.name
    return path.with_name(f"{stem}.{machine}.json")


def run_course_cli(args, requests, options) -> int:
    """`check-lab course`: the course's labs in order on one machine (checker/course.py)."""
    from checker import lab as labs
    from checker.course import COURSE, run_course, select, split_sets
    from checker.reporters.console import ConsoleReporter

    if args.watch or args.record or args.timeouts:
        raise UsageError("`course` runs each lab as it is: leave out --watch, --record and --timeout")
    chosen = select(labs.available(args.lab_dir), args.labs)
    elsewhere = [lab for lab in chosen if not lab.on_one_machine]
    chosen = [lab for lab in chosen if lab.on_one_machine]
    if not chosen:
        raise UsageError("none of these labs runs on the docker-vm alone")
    sets = split_sets(chosen, labs.parse_sets(args.sets))
    if args.targets:
        return run_course_on_targets(args, requests, chosen, sets)
    transport = targets.open_target(options)
    console = ConsoleReporter(_console(args), verbose=args.verbose)
    console.header(f"the course: labs {', '.join(lab.id for lab in chosen)}"
                   + (" (observe mode)" if args.observe else ""), transport.description)
    for lab in elsewhere:
        console.console.print(f" · lab {lab.id} needs the machines {', '.join(lab.machines)}: "
                              f"check-lab {lab.id} on its own")
    started = time.monotonic()
    runner_options = dict(replace=args.replace, timeout_factor=args.timeout_factor, lock_wait=args.lock_wait,
                          observe=args.observe, student=args.student)
    results = run_course(chosen, transport, runner_options, console.target_done,
                         on_start=lambda lab: console.phase(f"lab {lab.name}"), sets=sets)
    for r in results:
        stamp(r.report, args)
    code = for_targets(r.exit_code for r in results)
    console.render_many(results, code, time.monotonic() - started, noun="labs")
    reporters.write_many(requests, COURSE, results, code, kind="course")
    if code != ExitStatus.OK:
        bad = [f"lab {r.label} ({why_not(r.report) if r.report else r.error})" for r in results
               if r.exit_code != ExitStatus.OK]
        print(f"check-lab: {len(bad)} of {len(results)} labs did not pass: {'; '.join(bad)}", file=sys.stderr)
    return code


def _check_targets_options(args) -> None:
    """What every `--targets` run refuses, before anything runs."""
    if args.target:
        raise UsageError("give --target or --targets, not both")
    if args.jobs < 1:
        raise UsageError("-j must be at least 1")


def run_course_on_targets(args, requests, chosen: list, sets: dict) -> int:
    """`check-lab course --targets FILE`: the course on every target at once, one target per engine; its JSON
    report (kind engines) is the input of `check-lab drift`."""
    from checker.course import COURSE, course_on_targets
    from checker.reporters import json_report
    from checker.reporters.console import ConsoleReporter
    from checker.targets.file import load_targets

    _check_targets_options(args)
    if args.sign:
        raise UsageError("--sign signs a student's report: `course --targets` checks engines")
    if args.student:
        raise UsageError("--student names one student's machine: `course --targets` checks engines")
    if any(r.format != "json" for r in requests):
        raise UsageError("`course --targets` writes a JSON report (--report json:FILE), which `check-lab drift` "
                         "turns into the lab × engine table")
    entries = load_targets(args.targets, targets.TargetOptions(None, args.identity, args.known_hosts,
                                                               args.accept_new_host_key, args.connect_timeout))
    console = ConsoleReporter(_console(args), verbose=args.verbose)
    console.header(f"the course: labs {', '.join(lab.id for lab in chosen)}" + (" (observe mode)" if args.observe
                                                                                 else ""),
                   f"{len(entries)} targets, {min(args.jobs, len(entries))} at a time")

    def done(engine) -> None:
        if engine.error:
            console.console.print(f" ✗ {engine.label}: not checked: {engine.error}")
            return
        passed = sum(1 for r in engine.runs if r.exit_code == ExitStatus.OK)
        mark = "✓" if engine.exit_code == ExitStatus.OK else "✗"
        described = next((r.report.engine.describe() for r in engine.runs if r.report and r.report.engine), "")
        console.console.print(f" {mark} {engine.label}: {passed} of {len(engine.runs)} labs passed "
                              f"({described}; {engine.seconds:.1f}s)")

    runner_options = dict(replace=args.replace, timeout_factor=args.timeout_factor, lock_wait=args.lock_wait,
                          observe=args.observe)
    engines = course_on_targets(chosen, entries, args.jobs, runner_options, sets, done)
    for engine in engines:
        for r in engine.runs:
            stamp(r.report, args)
    code = for_targets(e.exit_code for e in engines)
    text = json_report.render_engines(COURSE, engines, code)
    for request in requests:
        request.write(text)
    if code != ExitStatus.OK:
        bad = [f"{e.label} ({e.error or ', '.join(f'lab {r.label}' for r in e.runs if r.exit_code)})"
               for e in engines if e.exit_code != ExitStatus.OK]
        print(f"check-lab: {len(bad)} of {len(engines)} targets did not pass: {'; '.join(bad)}", file=sys.stderr)
    return code


def run_many(args, plan, runner_options: dict, requests) -> int:
    """`--targets FILE`: every target checked (in parallel), one combined report."""
    from checker.multi import check_all
    from checker.reporters.console import ConsoleReporter
    from checker.targets.file import load_targets

    _check_targets_options(args)
    if args.record:
        raise UsageError("--record records one target: leave it out with --targets")
    entries = load_targets(args.targets, targets.TargetOptions(None, args.identity, args.known_hosts,
                                                               args.accept_new_host_key, args.connect_timeout))
    console = ConsoleReporter(_console(args), verbose=args.verbose)
    console.header(f"{plan.lab.name}" + (" (observe mode)" if args.observe else ""),
                   f"{len(entries)} targets, {min(args.jobs, len(entries))} at a time")
    started = time.monotonic()
    results = check_all(plan, entries, args.jobs, runner_options, console.target_done)
    for r in results:
        stamp(r.report, args)
    code = for_targets(r.exit_code for r in results)
    console.render_many(results, code, time.monotonic() - started)
    reporters.write_many(requests, plan.info(), results, code)
    if code != ExitStatus.OK:
        bad = [f"{r.label} ({'unreachable' if r.report is None else why_not(r.report)})"
               for r in results if r.exit_code != ExitStatus.OK]
        print(f"check-lab: {len(bad)} of {len(results)} targets did not pass: {'; '.join(bad)}", file=sys.stderr)
    return code


def why_not(report) -> str:
    """One line: why this run did not pass."""
    if report.interrupted:
        how = {"SIGTERM": "ended by SIGTERM", "SIGHUP": "ended by SIGHUP"}.get(report.signal, "interrupted")
        return f"{how}; what the run had created is cleaned up"
    if report.error:
        return report.error
    looked_only = any(s.status == "skipped" for s in report.steps)  # observe or watch: nothing was run
    failed_step = None if looked_only else next((s for s in report.steps if s.status in ("failed", "timed-out")),
                                                 None)
    not_judged = [c.id for c in report.claims if c.verdict == "error"]
    failed = [c.id for c in report.claims if c.verdict == "fail"]
    parts = []
    if failed_step is not None:
        parts.append(f"step {failed_step.step_id} {failed_step.status}: {failed_step.error}")
    if failed:
        parts.append(f"{len(failed)} of {len(report.claims)} claims failed: {', '.join(failed)}")
    if not_judged:
        parts.append(f"{len(not_judged)} claim(s) not judged" + (f": {', '.join(not_judged)}" if looked_only or
                                                                   not failed_step else ""))
    return "; ".join(parts) or "no claims to check"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread (in-process callers): leave the signals alone
        previous = {}
    try:
        if argv and argv[0] == "list":
            return list_labs(argv[1:])
        if argv and argv[0] in ("merge", "verify", "drift"):
            from checker import classroom

            return {"merge": classroom.merge, "verify": classroom.verify, "drift": classroom.drift}[argv[0]](argv[1:])
        args = build_parser().parse_args(argv)
        return run_check(args)
    except CheckLabError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"check-lab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        name = getattr(exc, "signal", "SIGINT")
        print(f"check-lab: {'interrupted' if name == 'SIGINT' else 'ended by ' + name}", file=sys.stderr)
        from checker.exitcodes import for_signal

        return for_signal(name)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE
    except Exception as exc:  # a bug: say so in one line
        if debug:
            raise
        print(f"check-lab: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return ExitStatus.INTERNAL
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
