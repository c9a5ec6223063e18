"""Many targets at once (`check-lab 07 --targets FILE -j N`): a class's machines, checked in parallel.

The targets come from a targets file (checker/targets/file.py). One target that cannot be reached is
reported as such and does not stop the others.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable

from checker.errors import CheckLabError, TargetError
from checker.exitcodes import ExitStatus, for_run
from checker.lab import Plan
from checker.records import TargetRun
from checker.runner import MachinesRunner, Runner
from checker.targets.file import TargetEntry


def check_all(plan: Plan, entries: list[TargetEntry], jobs: int, runner_options: dict,
              on_done: Callable[[TargetRun], None]) -> list[TargetRun]:
    """Check every target, `jobs` at a time; results in the order of the file."""
    results: dict[int, TargetRun] = {}
    lock = threading.Lock()

    def one(entry: TargetEntry) -> TargetRun:
        started = time.monotonic()
        own = Plan(plan.lab, dict(plan.values), plan.student)
        try:
            if plan.lab.on_one_machine:
                runner = Runner(own, entry.open(), **runner_options)
            elif entry.open_machines is None:
                raise TargetError(f"lab {plan.lab.id} runs on {', '.join(plan.lab.machines)}: this target is one "
                                  f"machine (give a Vagrant folder or NAME=TARGET,… for each)")
            else:
                runner = MachinesRunner(own, entry.open_machines(plan.lab.machines), **runner_options)
            report = runner.run()
            result = TargetRun(entry.label, entry.spec, report, report.error, for_run(report),
                               time.monotonic() - started)
        except CheckLabError as exc:
            result = TargetRun(entry.label, entry.spec, None, str(exc), ExitStatus.TARGET, time.monotonic() - started)
        with lock:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="check-lab-target") as pool:
        futures = {pool.submit(one, entry): i for i, entry in enumerate(entries)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
    return [results[i] for i in range(len(entries))]
