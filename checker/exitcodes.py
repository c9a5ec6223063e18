"""The exit-code policy of check-lab and lab-env, written once (in the spirit of httpie's ExitStatus).

  0    done: every claim holds / the machine is ready
  1    a claim failed or could not be judged / a provisioning step failed
  2    usage or lab-spec error
  3    the target is not reachable or not ready (no VM, SSH failure, no usable Docker, a name clash) /
       Vagrant or the machine failed
  4    internal error (a bug: run again with --debug and report it)
  129  ended by SIGHUP (a closed terminal) · 130 by Ctrl-C (SIGINT) · 143 by SIGTERM (a cancelled CI job,
       `timeout`): what the run had created is removed first
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    TARGET = 3
    INTERNAL = 4
    HANGUP = 129  # 128 + SIGHUP
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


SIGNALLED = (ExitStatus.INTERRUPTED, ExitStatus.TERMINATED, ExitStatus.HANGUP)
BY_SIGNAL = {"SIGINT": ExitStatus.INTERRUPTED, "SIGTERM": ExitStatus.TERMINATED, "SIGHUP": ExitStatus.HANGUP}

# The word a report gives each code ("result" in the JSON report).
RESULT_WORDS = {ExitStatus.OK: "pass", ExitStatus.FAILED: "fail", ExitStatus.TARGET: "error",
                ExitStatus.INTERRUPTED: "interrupted", ExitStatus.TERMINATED: "interrupted",
                ExitStatus.HANGUP: "interrupted"}


def result_word(code: int) -> str:
    return RESULT_WORDS.get(code, "error")


def for_signal(name: str | None) -> ExitStatus:
    return BY_SIGNAL.get(name or "SIGINT", ExitStatus.INTERRUPTED)


def for_run(report) -> ExitStatus:
    """One run of a lab on one target (a RunReport)."""
    if report.interrupted:
        return for_signal(report.signal)
    if report.error:
        return ExitStatus.TARGET
    return ExitStatus.OK if report.passed else ExitStatus.FAILED


def for_targets(codes: Iterable[int]) -> ExitStatus:
    """Many targets: a signal wins, then a target that could not be checked, then a failed claim."""
    codes = set(codes)
    for code in (*SIGNALLED, ExitStatus.TARGET, ExitStatus.INTERNAL, ExitStatus.FAILED):
        if code in codes:
            return ExitStatus(code)
    return ExitStatus.OK


def for_provisioning(failed_step: bool) -> ExitStatus:
    """lab-env: a provisioning step that failed is a finding about the machine (1), like a failed claim."""
    return ExitStatus.FAILED if failed_step else ExitStatus.OK
