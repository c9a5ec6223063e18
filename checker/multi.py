"""Many targets at once (`check-lab 07 --targets FILE -j N`): a class's machines, checked in parallel.

FILE is either an OpenSSH config file (each `Host` without wildcards is a target, with its HostName, Port,
User, IdentityFile and host-key settings), or a list, one target per line:

    # label = target [identity=KEYFILE]
    alice = ssh://vagrant@10.0.0.11:22 identity=~/.ssh/class_key
    bob   = vagrant:/home/teacher/vms/bob          # the Vagrant machine of that folder (vagrant:PATH#NAME)
    ssh://vagrant@10.0.0.13:2222                   # the label is the target itself

One target that cannot be reached is reported as such and does not stop the others.
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from checker.errors import CheckLabError, UsageError
from checker.lab import Plan
from checker.runner import RunReport, Runner
from checker.targets import TargetOptions, open_target
from checker.transport import SSHSettings, SSHTransport, Transport


@dataclass
class TargetEntry:
    label: str
    spec: str
    open: Callable[[], Transport]


@dataclass
class TargetResult:
    entry: TargetEntry
    report: RunReport | None
    error: str | None  # the target could not be checked at all (unreachable, not ready)
    exit_code: int
    seconds: float


def load_targets(path: Path, opts: TargetOptions) -> list[TargetEntry]:
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise UsageError(f"--targets {path}: {exc.strerror}") from None
    if re.search(r"^\s*Host\s+\S", text, re.M | re.I):
        entries = _from_ssh_config(text, opts)
    else:
        entries = _from_list(text, opts, path)
    if not entries:
        raise UsageError(f"--targets {path}: no targets in it")
    labels = [e.label for e in entries]
    duplicate = next((label for label in labels if labels.count(label) > 1), None)
    if duplicate:
        raise UsageError(f"--targets {path}: the label {duplicate!r} is used twice")
    return entries


def _from_list(text: str, opts: TargetOptions, path: Path) -> list[TargetEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()  # a comment starts a line or follows a space
        if not line:
            continue
        labelled = re.match(r"^([A-Za-z0-9_.@-]+)\s*=\s*(.*)$", line)
        label, line = (labelled.group(1), labelled.group(2)) if labelled else ("", line)
        words = shlex.split(line)
        if not words:
            raise UsageError(f"--targets {path}:{number}: no target after the label")
        spec, extras = words[0], words[1:]
        bad = [w for w in extras if not w.startswith("identity=")]
        if bad:
            raise UsageError(f"--targets {path}:{number}: unexpected {bad[0]!r} (only identity=KEYFILE)")
        if not spec.startswith(("ssh://", "vagrant", "local")):
            raise UsageError(f"--targets {path}:{number}: {spec!r} is not ssh://…, vagrant:PATH or local")
        identity = next((w.split("=", 1)[1] for w in extras), opts.identity)
        target_opts = TargetOptions(spec, identity, opts.known_hosts, opts.accept_new_host_key, opts.connect_timeout)
        entries.append(TargetEntry(label or spec, spec, lambda o=target_opts: open_target(o)))
    return entries


def _from_ssh_config(text: str, opts: TargetOptions) -> list[TargetEntry]:
    import paramiko

    config = paramiko.SSHConfig.from_text(text)
    entries = []
    for host in sorted(h for h in config.get_hostnames() if not any(c in h for c in "*?!")):
        entry = config.lookup(host)
        strict = str(entry.get("stricthostkeychecking", "yes")).lower()
        known = entry.get("userknownhostsfile")
        policy = "vagrant" if strict == "no" else "accept-new" if (strict == "accept-new" or
                                                                    opts.accept_new_host_key) else "strict"
        settings = SSHSettings(
            host=entry.get("hostname", host), port=int(entry.get("port", 22)), user=entry.get("user", "vagrant"),
            key_files=tuple(entry.get("identityfile", [])) or ((opts.identity,) if opts.identity else ()),
            host_keys=policy, known_hosts=(known.split()[0] if known and policy != "vagrant" else opts.known_hosts),
        )
        entries.append(TargetEntry(host, settings.describe(),
                                   lambda s=settings: SSHTransport(s, connect_timeout=opts.connect_timeout)))
    return entries


def check_all(plan: Plan, entries: list[TargetEntry], jobs: int, runner_options: dict,
              exit_code_for: Callable[[RunReport], int], on_done: Callable[[TargetResult], None]) -> list[TargetResult]:
    """Check every target, `jobs` at a time; results in the order of the file."""
    from checker.errors import EXIT_TARGET

    results: dict[int, TargetResult] = {}
    lock = threading.Lock()

    def one(index: int, entry: TargetEntry) -> TargetResult:
        started = time.monotonic()
        try:
            transport = entry.open()
            report = Runner(Plan(plan.lab, dict(plan.values)), transport, **runner_options).run()
            result = TargetResult(entry, report, report.error, exit_code_for(report), time.monotonic() - started)
        except CheckLabError as exc:
            result = TargetResult(entry, None, str(exc), EXIT_TARGET, time.monotonic() - started)
        with lock:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="check-lab-target") as pool:
        futures = {pool.submit(one, i, entry): i for i, entry in enumerate(entries)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
    return [results[i] for i in range(len(entries))]


def combined_exit_code(results: list[TargetResult]) -> int:
    """3 if a target could not be checked, else 1 if a claim failed somewhere, else 0."""
    from checker.errors import EXIT_CLAIM_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET

    codes = {r.exit_code for r in results}
    for code in (EXIT_INTERRUPTED, EXIT_TARGET, EXIT_CLAIM_FAILED):
        if code in codes:
            return code
    return EXIT_OK
