"""One error hierarchy; each error carries its exit code (the policy is in checker.exitcodes)."""

from __future__ import annotations

from checker.exitcodes import ExitStatus


class CheckLabError(Exception):
    """An error with a one-line message for the user; `exit_code` says how the CLI ends."""

    exit_code = ExitStatus.FAILED

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(CheckLabError):
    """Bad command line: unknown lab, bad --set, unreadable file."""

    exit_code = ExitStatus.USAGE


class LabSpecError(UsageError):
    """A lab folder or its lab.yaml is not valid."""


class TargetError(CheckLabError):
    """The target cannot be reached or is not ready: no VM, SSH failure, no usable Docker, name clash."""

    exit_code = ExitStatus.TARGET


class ProvisioningFailed(CheckLabError):
    """lab-env: a step of the guest provisioner failed (a finding about the machine, like a failed claim)."""

    exit_code = ExitStatus.FAILED
