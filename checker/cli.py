"""check-lab: parse → load and validate the lab → connect → run → render.

Exit codes (decided here, and only here):
  0   every claim holds
  1   a claim failed or could not be judged
  2   usage or lab-spec error
  3   target not reachable or not ready (no VM, SSH failure, no Docker, a lab name already taken)
  4   internal error (a bug: run with --debug and report it)
  130 interrupted (Ctrl-C); what the run created is cleaned up first
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from checker import __version__
from checker.errors import (EXIT_CLAIM_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET, EXIT_USAGE,
                            CheckLabError, UsageError)

EXIT_INTERNAL = 4


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="check-lab",
        description="Run a lab of the Docker course on the lab machine and check every claim the lab makes.",
        epilog="`check-lab list` lists the labs. Exit codes: 0 all claims hold, 1 a claim failed, "
               "2 usage or lab error, 3 target not reachable or not ready, 130 interrupted.",
    )
    p.add_argument("lab", help="a lab id (07) or the path of a lab folder; `list` lists the labs")
    p.add_argument("--target", metavar="SPEC",
                   help="vagrant[:NAME] (default: the Vagrant machine of this folder), ssh://USER@HOST:PORT, or local")
    p.add_argument("--targets", metavar="FILE",
                   help="check many targets (a list, or an OpenSSH config file's hosts); see -j")
    p.add_argument("-j", "--jobs", type=int, default=4, metavar="N", help="with --targets: N targets at once")
    p.add_argument("--identity", "-i", metavar="FILE", help="private key for an ssh:// target")
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file for ssh:// targets (default ~/.ssh/known_hosts)")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="ssh:// targets: trust and remember an unknown host key (a changed key is still refused)")
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[],
                   help="override a lab variable (see `check-lab list -v`)")
    p.add_argument("--json", metavar="FILE", help="write the versioned JSON report here")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report here")
    p.add_argument("--observe", action="store_true",
                   help="run no lab step: judge the state the student left (their images and containers); "
                        "nothing on the target is changed")
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
    p.add_argument("--labs", metavar="DIR", help="look for labs in DIR")
    p.add_argument("--record", metavar="FILE", help="write a transcript of every remote command (for tests)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every step's output")
    p.add_argument("--no-color", action="store_true", help="no colours")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"check-lab {__version__}")
    return p


def exit_code_for(report) -> int:
    if report.interrupted:
        return EXIT_INTERRUPTED
    if report.error:
        return EXIT_TARGET
    return EXIT_OK if report.passed else EXIT_CLAIM_FAILED


def _console(args):
    from rich.console import Console

    return Console(highlight=False, no_color=args.no_color or None)


def _output_path(value: str | None, flag: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {value}: is a folder, give a file name")
    if not path.parent.resolve().is_dir():
        raise UsageError(f"{flag} {value}: folder {path.parent} does not exist")
    return path


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
    from checker import lab as labs
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="check-lab list", description="List the labs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each lab's variables")
    parser.add_argument("--labs", metavar="DIR")
    args = parser.parse_args(argv)
    found = labs.available(args.labs)
    console = Console(highlight=False)
    if not found:
        console.print("no labs found (looked in: " + ", ".join(map(str, labs.lab_roots(args.labs))) + ")")
        return EXIT_USAGE
    table = Table("lab", "title", "steps", "claims", "folder", box=None, header_style="bold")
    for lab in found:
        table.add_row(lab.id, lab.title, str(len(lab.steps)), str(len(lab.claims)), str(lab.folder))
    console.print(table)
    if args.verbose:
        for lab in found:
            for var in lab.variables.values():
                console.print(f"  {lab.id}: --set {var.name}=… (default {var.default!r}) {var.description}")
    return EXIT_OK


def run_check(args) -> int:
    from checker import lab as labs
    from checker.targets import TargetOptions, open_target

    lab = labs.find(args.lab, args.labs)
    plan = labs.Plan(lab, lab.values(labs.parse_sets(args.sets)))
    step_timeouts = _timeouts(args.timeouts, lab)
    if args.timeout_factor <= 0:
        raise UsageError("--timeout-factor must be positive")
    json_path = _output_path(args.json, "--json")
    junit_path = _output_path(args.junit, "--junit")
    record_path = _output_path(args.record, "--record")

    if args.connect_timeout <= 0 or args.lock_wait < 0:
        raise UsageError("--connect-timeout must be positive and --lock-wait not negative")
    runner_options = dict(replace=args.replace, timeout_factor=args.timeout_factor, step_timeouts=step_timeouts,
                          lock_wait=args.lock_wait, observe=args.observe)
    if args.targets:
        return run_many(args, plan, runner_options, json_path, junit_path)
    transport = open_target(TargetOptions(args.target, args.identity, args.known_hosts, args.accept_new_host_key,
                                          args.connect_timeout))
    if hasattr(transport, "start_connecting"):
        transport.start_connecting()  # the SSH handshake runs while the rest is imported and set up

    from checker.reporters.console import ConsoleReporter
    from checker.runner import Runner

    console = ConsoleReporter(_console(args), verbose=args.verbose)
    if record_path:
        from checker.transcript import RecordingTransport

        transport = RecordingTransport(transport, record_path, {"lab": lab.id, "values": plan.values,
                                                                "observe": args.observe})
    console.header(lab.name + (" (observe mode)" if args.observe else ""), transport.description)
    runner = Runner(plan, transport, events=console, **runner_options)
    try:
        report = runner.run()
    finally:
        console.close()
    code = exit_code_for(report)
    console.render(report, code)
    if json_path:
        from checker.reporters import json_report

        json_report.write(report, code, json_path)
    if junit_path:
        from checker.reporters import junit

        junit.write(report, code, junit_path)
    if code != EXIT_OK:
        print(f"check-lab: {why_not(report)}", file=sys.stderr)
    return code


def run_many(args, plan, runner_options: dict, json_path: Path | None, junit_path: Path | None) -> int:
    """`--targets FILE`: every target checked (in parallel), one combined report."""
    from checker.multi import check_all, combined_exit_code, load_targets
    from checker.reporters.console import ConsoleReporter
    from checker.targets import TargetOptions

    if args.target:
        raise UsageError("give --target or --targets, not both")
    if args.jobs < 1:
        raise UsageError("-j must be at least 1")
    if args.record:
        raise UsageError("--record records one target: leave it out with --targets")
    entries = load_targets(Path(args.targets), TargetOptions(None, args.identity, args.known_hosts,
                                                             args.accept_new_host_key, args.connect_timeout))
    console = ConsoleReporter(_console(args), verbose=args.verbose)
    console.header(f"{plan.lab.name}" + (" (observe mode)" if args.observe else ""),
                   f"{len(entries)} targets, {min(args.jobs, len(entries))} at a time")
    started = time.monotonic()
    results = check_all(plan, entries, args.jobs, runner_options, exit_code_for, console.target_done)
    code = combined_exit_code(results)
    console.render_many(results, code, time.monotonic() - started)
    if json_path:
        from checker.reporters import json_report

        json_report.write_many(plan, results, code, json_path)
    if junit_path:
        from checker.reporters import junit

        junit.write_many(plan, results, code, junit_path)
    if code != EXIT_OK:
        bad = [f"{r.entry.label} ({'unreachable' if r.report is None else why_not(r.report)})"
               for r in results if r.exit_code != EXIT_OK]
        print(f"check-lab: {len(bad)} of {len(results)} targets did not pass: {'; '.join(bad)}", file=sys.stderr)
    return code


def why_not(report) -> str:
    """One line: why this run did not pass."""
    if report.interrupted:
        return "interrupted; what the run had created is cleaned up"
    if report.error:
        return report.error
    failed_step = next((s for s in report.steps if s.status in ("failed", "timed-out")), None)
    not_judged = [c.id for c in report.claims if c.verdict == "error"]
    failed = [c.id for c in report.claims if c.verdict == "fail"]
    parts = []
    if failed_step is not None:
        parts.append(f"step {failed_step.step_id} {failed_step.status}: {failed_step.error}")
    if failed:
        parts.append(f"{len(failed)} of {len(report.claims)} claims failed: {', '.join(failed)}")
    if not_judged:
        parts.append(f"{len(not_judged)} claim(s) not judged")
    return "; ".join(parts) or "no claims to check"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv and argv[0] == "list":
            return list_labs(argv[1:])
        args = build_parser().parse_args(argv)
        return run_check(args)
    except CheckLabError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"check-lab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("check-lab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:  # a bug: say so in one line
        if debug:
            raise
        print(f"check-lab: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL
