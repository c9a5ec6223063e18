"""Today's engines: what one lab costs on one more engine, and the course on five engines at once.

    .venv/bin/python -m bench.engines [--engine E2] [--labs 05,07,08,09] [--json bench-engines.json]

1. One lab on one more engine: that engine's container VM up (`lab-env up`, its settings from
   tests/engines.py), then `check-lab 07` on it; next to the same start plus lab 07's own Docker work, its
   commands as one raw ssh script (medians of --reps, in turn). Goal: the first costs no more than the second.
2. The course (`--labs`) on E1-E5, one container VM each: `check-lab course --targets` over all five at once
   (-j 5) next to the sum of the five engines' runs one at a time, and the floor the CPU sets (the busy
   CPU-seconds of the five single runs over this machine's cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from bench.parallel import busy_cpu_seconds
from bench.run import BIN, REPO, Project, raw_lab_07, raw_ssh


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.engines")
    parser.add_argument("--engine", default="E2", help="the one more engine of the first measure (default E2)")
    parser.add_argument("--labs", default="05,07,08,09", help="the course's labs of the second (default 05,07,08,09)")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of the first measure (default 2)")
    parser.add_argument("--json", default="bench-engines.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from tests import engines
    from tests.testenv import env as testenv

    settings = testenv.start()
    for suite in ("trixie", "sid"):
        testenv.ensure_container_vm(settings, suite)
    figures: dict[str, float | str] = {"engine": args.engine, "labs": args.labs}

    project = Project(settings, {**testenv.lab_settings(settings), **engines.engine_settings(args.engine)})
    try:
        figures["vm_up_s"], _ = project.run(str(BIN / "lab-env"), "up", "--provider", "docker")
        ssh_cfg, script = raw_lab_07(project)
        raw, checked = [], []
        for _rep in range(args.reps):  # in turn, the raw script first: the fresh engine's first pull is its
            raw.append(raw_ssh(project, ssh_cfg, script))
            checked.append(project.run(str(BIN / "check-lab"), "07")[0])
        figures["raw_ssh_s"], figures["check_lab_s"] = statistics.median(raw), statistics.median(checked)
    finally:
        project.destroy()
    figures["one_more_engine_s"] = figures["vm_up_s"] + figures["check_lab_s"]
    figures["its_docker_work_and_a_vm_s"] = figures["vm_up_s"] + figures["raw_ssh_s"]
    figures["ratio_one_more_engine"] = figures["one_more_engine_s"] / figures["its_docker_work_and_a_vm_s"]

    projects = [Project(settings, {**testenv.lab_settings(settings), **engines.engine_settings(label)})
                for label in engines.DOCKER_LABELS]
    singles, cpu = [], []
    try:
        for project in projects:
            project.run(str(BIN / "lab-env"), "up", "--provider", "docker")
        listing = projects[0].root / "engines.txt"
        listing.write_text("".join(f"{label} = vagrant:{p.root}\n" for label, p in zip(engines.DOCKER_LABELS, projects)))
        for label, project in zip(engines.DOCKER_LABELS, projects):
            one = project.root / "one.txt"
            one.write_text(f"{label} = vagrant:{project.root}\n")
            before = busy_cpu_seconds()
            seconds, _ = project.run(str(BIN / "check-lab"), "course", "--labs", args.labs, "--targets", str(one),
                                     "-j", "1", check=False)
            cpu.append(busy_cpu_seconds() - before)
            singles.append(seconds)
        figures["course_five_at_once_s"], _ = projects[0].run(
            str(BIN / "check-lab"), "course", "--labs", args.labs, "--targets", str(listing), "-j", "5", check=False)
    finally:
        for project in projects:
            project.destroy()
    cores = os.cpu_count() or 1
    figures.update({"course_singles_s": singles, "course_sum_of_singles_s": sum(singles), "cores": cores,
                    "course_cpu_seconds": sum(cpu), "course_floor_by_cpu_s": sum(cpu) / cores})
    figures["ratio_five_at_once_vs_sum"] = figures["course_five_at_once_s"] / figures["course_sum_of_singles_s"]

    print(f"\nOne lab (07) on one more engine ({args.engine}), its container VM started first:")
    print(f"  VM up + check-lab 07          {figures['one_more_engine_s']:6.1f} s  (up {figures['vm_up_s']:.1f} s)")
    print(f"  VM up + its commands over ssh {figures['its_docker_work_and_a_vm_s']:6.1f} s  "
          f"(raw {figures['raw_ssh_s']:.1f} s)")
    print(f"  ratio                         {figures['ratio_one_more_engine']:6.2f}   goal ≤ 1 (no more than its work)")
    print(f"\ncheck-lab course --labs {args.labs} on E1-E5:")
    print(f"  five at once (-j 5)           {figures['course_five_at_once_s']:6.1f} s")
    print(f"  the five one at a time, summed {figures['course_sum_of_singles_s']:5.1f} s  "
          f"({', '.join(f'{s:.0f}' for s in singles)})")
    print(f"  CPU floor                     {figures['course_floor_by_cpu_s']:6.1f} s  "
          f"({figures['course_cpu_seconds']:.0f} busy CPU-seconds on {cores} cores)")
    with open(args.json, "w") as fh:
        json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
