"""Lab 11 on the course's three swarm machines: how long they take to come up, and `check-lab 11` next to
the same commands over raw `ssh`, side by side in one run (alternating, medians).

    .venv/bin/python -m bench.swarm [--provider docker|libvirt] [--reps N] [--replicas N] [--json FILE]

It brings up its own three container VMs (`vagrant up swarmmanager swarmnode1 swarmnode2`, timed: goal
≤ 40 s) on the offline test environment; `--provider libvirt`: three libvirt VMs under QEMU/TCG from the
offline box, together (goal ≤ 4 min; one processor and 1 GB each, on their own network 10.135.7.0/24). The raw side runs the lab's commands as shell scripts, one `ssh`
per run of consecutive steps on the same machine (the join token taken from `init`'s output as a student
copies it), then takes every machine out of the swarm, as check-lab does. Goal: ≤ 1.15×. Before each run
the machines' engines start again (outside the timing): on this host's kernel, without IP_VS, an engine that
has been a swarm manager cannot start a second swarm's services until it restarts (not the libvirt VMs':
their kernel has IP_VS; check-lab gets `--timeout-factor 3` there). nginx is pulled on every machine first,
outside the timing, so that neither side pays the first pull (the service's image stays on the machines).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

from bench.run import BIN, Project, median

SWARM = ("swarmmanager", "swarmnode1", "swarmnode2")
LEAVE = "docker swarm leave --force >/dev/null 2>&1 || true"


def raw_groups(replicas: str, manager: str | None = None) -> list:
    """The lab's steps as (machine, [steps]) runs of consecutive steps on the same machine, and the plan."""
    from checker import lab as labs

    lab = labs.find("11")
    values = {"replicas": replicas, **({"manager_address": manager} if manager else {})}
    plan = labs.Plan(lab, lab.values(values))
    groups: list[tuple[str, list]] = []
    for step in lab.steps:
        machine = step.on or lab.machines[0]
        if groups and groups[-1][0] == machine:
            groups[-1][1].append(step)
        else:
            groups.append((machine, [step]))
    return groups, plan


def raw_run(config: Path, replicas: str, libvirt: bool = False) -> float:
    from tests.testenv.env import LIBVIRT_SWARM_SUBNET

    groups, plan = raw_groups(replicas, f"{LIBVIRT_SWARM_SUBNET}.100" if libvirt else None)
    captured: dict[str, str] = {}
    started = time.monotonic()
    for machine, steps in groups:
        script = "set -e\n" + "\n".join(
            f"( {plan.command(step, captured)}\n)" + (" || true" if step.may_fail else "") for step in steps)
        done = subprocess.run(["ssh", "-F", str(config), machine, script], capture_output=True, text=True,
                              timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"raw ssh on {machine} failed: {done.stderr.strip()[-300:]}")
        for step in steps:
            for name, pattern, _observe in step.captures:
                match = re.search(pattern, done.stdout, re.M)
                captured[f"captured.{name}"] = (match.group(1) if match.groups() else match.group(0)) if match else ""
    for machine in SWARM:
        subprocess.run(["ssh", "-F", str(config), machine, LEAVE], capture_output=True, timeout=120)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    from tests.integration.test_swarm import RESTART_ENGINE
    from tests.testenv import env as testenv

    parser = argparse.ArgumentParser(prog="bench.swarm")
    parser.add_argument("--provider", choices=("docker", "libvirt"), default="docker")
    parser.add_argument("--reps", type=int, default=None, help="runs of each side (default 3; 1 on libvirt)")
    parser.add_argument("--replicas", default="6", help="`docker service scale` (the course's 50 takes minutes)")
    parser.add_argument("--json", default="bench-swarm.json")
    args = parser.parse_args(argv)
    libvirt = args.provider == "libvirt"
    reps = args.reps or (1 if libvirt else 3)
    settings = testenv.start()
    lab_settings = testenv.lab_settings(settings)
    sets = ["--set", f"replicas={args.replicas}"]
    if libvirt:
        testenv.ensure_libvirt()
        testenv.ensure_box("bookworm")
        lab_settings.update(testenv.libvirt_swarm_settings("bookworm"))
        sets += ["--set", f"manager_address={testenv.LIBVIRT_SWARM_SUBNET}.100", "--timeout-factor", "3"]
    project = Project(settings, lab_settings)
    figures: dict = {"provider": args.provider, "reps": reps, "replicas": args.replicas, "check_lab_s": [],
                     "raw_ssh_s": []}
    try:
        figures["up_s"], _ = project.run("vagrant", "up", *SWARM, f"--provider={args.provider}")
        _s, proc = project.run("vagrant", "ssh-config", *SWARM)
        config = project.root / "ssh_config"
        config.write_text(proc.stdout)

        def restart() -> None:
            if libvirt:
                return
            for machine in SWARM:
                subprocess.run(["ssh", "-F", str(config), machine, RESTART_ENGINE], check=True,
                               capture_output=True, timeout=180)

        for machine in SWARM:
            subprocess.run(["ssh", "-F", str(config), machine, "docker pull -q nginx >/dev/null"], check=True,
                           capture_output=True, timeout=1200)
        for _rep in range(reps):
            restart()
            seconds, proc = project.run(str(BIN / "check-lab"), "11", "--target", f"vagrant:{project.root}",
                                        *sets, "--no-color", check=False)
            if proc.returncode != 0:
                raise SystemExit(f"check-lab 11 failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
            figures["check_lab_s"].append(round(seconds, 2))
            restart()
            figures["raw_ssh_s"].append(round(raw_run(config, args.replicas, libvirt), 2))
    finally:
        project.run("vagrant", "destroy", "-f", *SWARM, check=False)
        project.destroy()
    ours, raw = median(figures["check_lab_s"]), median(figures["raw_ssh_s"])
    figures["ratio"] = round(ours / raw, 3)
    machines = "libvirt VMs under TCG" if libvirt else "container VMs"
    rows = [(f"three swarm machines up and provisioned ({machines})", f"{figures['up_s']:.1f} s",
             "≤ 4 min" if libvirt else "≤ 40 s"),
            (f"check-lab 11 (median of {reps})", f"{ours:.1f} s", ""),
            ("the same commands over raw ssh", f"{raw:.1f} s", ""),
            ("check-lab / raw ssh", f"{figures['ratio']:.2f}×", "≤ 1.15×")]
    for what, value, goal in rows:
        print(f"{what:<58} {value:>10}  {goal}")
    Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
