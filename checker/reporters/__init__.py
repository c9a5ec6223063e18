"""Reporters share one interface: `write(report, exit_code, destination)`.

The exit code is decided once, in the CLI, and handed to every reporter; none of them decides it.
"""

from __future__ import annotations

from checker.errors import EXIT_CLAIM_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET

RESULTS = {EXIT_OK: "pass", EXIT_CLAIM_FAILED: "fail", EXIT_TARGET: "error", EXIT_INTERRUPTED: "interrupted"}


def result_word(exit_code: int) -> str:
    return RESULTS.get(exit_code, "error")
