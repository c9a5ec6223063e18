"""Grading a class in observe mode: `check-lab 07 --targets --observe` on N container VMs (-j N, default
10), each left by a scripted student who typed the course's lab 07, next to one of them alone.

    .venv/bin/python -m bench.grading [--vms 10] [--reps 3] [--json FILE]

Goals (issue "Grading where instructors grade"): the checker's own CPU per target ≤ 0.3 CPU-seconds, and
the wall time of N targets at once ≤ 2× one. The checker's CPU is its process's own user + system time
(getrusage of the child), not the machines': observe mode runs only the lab's read-only commands there.
Beside it, the floor: what one target keeps the whole machine busy for (/proc/stat: the checker, sshd, the
docker commands and the engine in the VM), N times the machines' part of it and the checker's CPU of the N
targets' run (its start paid once), shared by this machine's cores. Medians of alternating
repetitions; the figures also go to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.parallel import busy_cpu_seconds
from bench.run import BIN, REPO, Project


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def student_types_lab_07(project) -> None:
    """The course's lab 07 typed as printed in the VM (tests/student.py), leaving what it leaves."""
    from checker.targets.ssh import SSHSettings, SSHTransport
    from provision.vagrant import Machine
    from tests.student import Student, course_commands
    from tests.variants import LAB07

    cfg = Machine(project.root).ssh_config()
    ssh = SSHTransport(SSHSettings(cfg.host, cfg.port, cfg.user, cfg.key_files, host_keys="vagrant"))
    try:
        student = Student(ssh)
        student.clone(LAB07, "labs/07-FS_layering")
        done = student.do(course_commands(LAB07 / "course" / "README.md"))
        if not done.ok:
            raise SystemExit(f"bench: the scripted student's lab 07 failed: {done.stderr[-1000:]}")
    finally:
        ssh.close()


def measured(project, targets_file, jobs: int) -> tuple[float, float, float]:
    """Wall seconds, the checker's own CPU-seconds and the whole machine's busy CPU-seconds of one
    `check-lab 07 --targets … --observe`."""
    before, busy = child_cpu(), busy_cpu_seconds()
    started = time.perf_counter()
    _s, proc = project.run(str(BIN / "check-lab"), "07", "--targets", str(targets_file), "--observe", "-j", str(jobs),
                           check=False)
    wall = time.perf_counter() - started
    # Exit 1 is what grading finds after the course's own stop (the containers' sizes are not judged): only a
    # target that could not be checked, or worse, stops the bench.
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench: check-lab --observe could not check a target ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}")
    return wall, child_cpu() - before, busy_cpu_seconds() - busy


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.grading")
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", default="bench-grading.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from tests.testenv import env as testenv

    settings = testenv.start()
    projects = [Project(settings, testenv.lab_settings(settings)) for _ in range(args.vms)]
    one, many = {"wall": [], "cpu": [], "busy": []}, {"wall": [], "cpu": [], "busy": []}
    try:
        started = time.perf_counter()
        for project in projects:
            project.run(str(BIN / "lab-env"), "up", "--provider", "docker")
        up = time.perf_counter() - started
        with ThreadPoolExecutor(max_workers=min(4, args.vms)) as pool:
            list(pool.map(student_types_lab_07, projects))
        first = projects[0]
        single = first.root / "one.txt"
        single.write_text(f"student0 = vagrant:{first.root}\n")
        everyone = first.root / "class.txt"
        everyone.write_text("".join(f"student{i} = vagrant:{p.root}\n" for i, p in enumerate(projects)))
        measured(first, everyone, args.vms)  # every machine's SSH settings cached, as on a grader's second run
        for _rep in range(args.reps):
            for figures, file, jobs in ((one, single, 1), (many, everyone, args.vms)):
                wall, cpu, busy = measured(first, file, jobs)
                figures["wall"].append(wall)
                figures["cpu"].append(cpu)
                figures["busy"].append(busy)
    finally:
        for project in projects:
            project.destroy()
    result = {
        "targets": args.vms, "vms_up_s": up,
        "one_target_s": statistics.median(one["wall"]), "all_targets_s": statistics.median(many["wall"]),
        "checker_cpu_one_target_s": statistics.median(one["cpu"]),
        "checker_cpu_per_target_s": statistics.median(many["cpu"]) / args.vms,
    }
    result["ratio"] = result["all_targets_s"] / result["one_target_s"]
    # N targets need at least N times the machine's work for one target (sshd, the docker commands, the engine:
    # all it was busy for except the checker) plus the checker's own CPU for all N (its start is paid once, not
    # N times), on this machine's cores.
    result["busy_cpu_one_target_s"] = statistics.median(one["busy"])
    result["machine_cpu_one_target_s"] = result["busy_cpu_one_target_s"] - result["checker_cpu_one_target_s"]
    result["cores"] = os.cpu_count() or 1
    result["ratio_floor_by_cpu"] = ((args.vms * result["machine_cpu_one_target_s"] + statistics.median(many["cpu"]))
                                    / result["cores"] / result["one_target_s"])
    print(f"\nobserve mode, {args.vms} targets at once (-j {args.vms}) vs one, medians of {args.reps}:")
    print(f"  one target           {result['one_target_s']:6.2f} s, checker CPU {result['checker_cpu_one_target_s']:.2f} s")
    print(f"  {args.vms} targets at once   {result['all_targets_s']:6.2f} s   ratio {result['ratio']:.2f}   goal ≤ 2")
    print(f"  checker CPU per target {result['checker_cpu_per_target_s']:.3f} s   goal ≤ 0.3")
    print(f"  one target keeps the machine busy for {result['busy_cpu_one_target_s']:.2f} CPU-seconds, "
          f"{result['machine_cpu_one_target_s']:.2f} of them not the checker's: {args.vms} of them and the checker "
          f"on {result['cores']} cores cannot take less than {result['ratio_floor_by_cpu']:.2f}× one")
    with open(args.json, "w") as fh:
        json.dump({"figures": result, "one": one, "many": many}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
