"""`lab-env provision`: the guest provisioner (guest.py, the same file the Vagrantfile runs), run over SSH.

`transport` is any object with the runner's transport methods (`run`, `put_files`): lab-env hands in the
checker's Vagrant target; nothing here imports the checker.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from provision.guest import OPTIONS, Outcome

GUEST = Path(__file__).resolve().parent / "guest.py"


class ProvisionError(Exception):
    """The provisioner could not run on the machine at all (one line, for the user)."""


@dataclass
class Provisioned:
    outcomes: list[Outcome] = field(default_factory=list)
    package_manager_calls: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def failed(self) -> Outcome | None:
        return next((o for o in self.outcomes if o.status == "failed"), None)


def guest_env(settings: dict[str, str]) -> dict[str, str]:
    """The settings the guest provisioner reads (its OPTIONS), from all LAB_* settings."""
    known = {var for var, *_ in OPTIONS.values()}
    return {k: v for k, v in settings.items() if k in known}


def provision(transport, settings: dict[str, str], on_outcome: Callable[[Outcome], None],
              timeout: float = 1800.0) -> Provisioned:
    result = Provisioned()

    def line(text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            result.output.append(text)
            return
        if "summary" in data:
            result.package_manager_calls = data["summary"].get("package_manager_calls", [])
        elif "step" in data:
            outcome = Outcome(**data)
            result.outcomes.append(outcome)
            on_outcome(outcome)

    made = transport.run("mktemp -d \"${TMPDIR:-/tmp}/lab-env.XXXXXXXX\"", timeout=30)
    if not made.ok or not made.stdout.strip():
        raise ProvisionError(f"cannot make a folder on the machine: {made.first_error_line()}")
    folder = made.stdout.strip()
    remote = f"{folder}/guest.py"
    try:
        transport.put_files([(GUEST, remote)])
        uid = transport.run(["id", "-u"], timeout=30).stdout.strip()
        env = [f"{k}={v}" for k, v in sorted(guest_env(settings).items())]
        argv = ["env", *env, "python3", remote, "--json"]
        if uid != "0":
            argv = ["sudo", "-n", *argv]
        res = transport.run(shlex.join(argv), timeout=timeout, on_line=line)
        if res.timed_out:
            raise ProvisionError(f"provisioning did not finish within {timeout:.0f}s")
        if not result.outcomes and res.exit_status != 0:
            raise ProvisionError(f"the provisioner did not run on the machine: {res.first_error_line()}")
    finally:
        transport.run(["rm", "-rf", folder], timeout=30)
    return result
