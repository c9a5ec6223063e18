"""One error hierarchy; the CLI maps it to exit codes in one place (checker.cli.exit_code_for)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_CLAIM_FAILED = 1
EXIT_USAGE = 2
EXIT_TARGET = 3
EXIT_INTERRUPTED = 130


class CheckLabError(Exception):
    """An error with a one-line message for the user; `exit_code` says how the CLI ends."""

    exit_code = EXIT_CLAIM_FAILED

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(CheckLabError):
    """Bad command line: unknown lab, bad --set, unreadable file."""

    exit_code = EXIT_USAGE


class LabSpecError(UsageError):
    """A lab folder or its lab.yaml is not valid."""


class TargetError(CheckLabError):
    """The target cannot be reached or is not ready: no VM, SSH failure, no usable Docker, name clash."""

    exit_code = EXIT_TARGET


class Interrupted(CheckLabError):
    exit_code = EXIT_INTERRUPTED
