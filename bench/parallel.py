"""Many targets at once: `check-lab 07 --targets` on 5 container VMs (-j 5) next to one of them alone.

    .venv/bin/python -m bench.parallel [--vms 5] [--reps 2] [--json FILE]

Goal: checking 5 machines at once takes at most twice as long as checking one. Prints the medians of
alternating repetitions and their ratio, and writes them to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from bench.run import BIN, REPO, Project


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all cores), from /proc/stat."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.parallel")
    parser.add_argument("--vms", type=int, default=5)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--json", default="bench-parallel.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from tests.testenv import env as testenv

    settings = testenv.start()
    projects = [Project(settings, testenv.lab_settings(settings)) for _ in range(args.vms)]
    one, many = [], []
    try:
        for project in projects:
            project.run(str(BIN / "lab-env"), "up", "--provider", "docker")
        first = projects[0]
        single = first.root / "one.txt"
        single.write_text(f"vm0 = vagrant:{first.root}\n")
        everyone = first.root / "all.txt"
        everyone.write_text("".join(f"vm{i} = vagrant:{p.root}\n" for i, p in enumerate(projects)))
        cpu = []
        for _rep in range(args.reps):
            before = busy_cpu_seconds()
            seconds, _ = first.run(str(BIN / "check-lab"), "07", "--targets", str(single), "-j", "1")
            cpu.append(busy_cpu_seconds() - before)
            one.append(seconds)
            seconds, _ = first.run(str(BIN / "check-lab"), "07", "--targets", str(everyone), "-j", str(args.vms))
            many.append(seconds)
    finally:
        for project in projects:
            project.destroy()
    figures = {"one_target_s": statistics.median(one), "targets": args.vms,
               "all_targets_s": statistics.median(many)}
    figures["ratio"] = figures["all_targets_s"] / figures["one_target_s"]
    # The lab's work (pull, builds, five containers, the engine's own processes) is CPU: N targets need at
    # least N times one target's CPU time, shared by this machine's cores.
    figures["cpu_seconds_one_target"] = statistics.median(cpu)
    figures["cores"] = os.cpu_count() or 1
    figures["ratio_floor_by_cpu"] = (args.vms * figures["cpu_seconds_one_target"] / figures["cores"]
                                     / figures["one_target_s"])
    print(f"\n{args.vms} targets at once (-j {args.vms}) vs one, medians of {args.reps}:")
    print(f"  one target        {figures['one_target_s']:6.1f} s")
    print(f"  {args.vms} targets at once {figures['all_targets_s']:6.1f} s")
    print(f"  ratio             {figures['ratio']:6.2f}   goal ≤ 2")
    print(f"  one target keeps the machine busy for {figures['cpu_seconds_one_target']:.1f} CPU-seconds: "
          f"{args.vms} of them on {figures['cores']} cores cannot take less than "
          f"{figures['ratio_floor_by_cpu']:.2f}× one")
    with open(args.json, "w") as fh:
        json.dump({"figures": figures, "one": one, "many": many}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
