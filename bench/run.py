"""The benchmark: what check-lab and lab-env cost next to the Docker work and to Vagrant itself.

    .venv/bin/python -m bench.run [--reps N] [--json FILE] [--libvirt]

It brings up its own target (a container VM in a throwaway Vagrant project, on the offline test
environment) and prints, with medians of N repetitions run side by side (alternating):

- check-lab 07 wall time vs the same lab commands as one raw `ssh` script (goal ≤ 1.15) and vs the
  naive way, one `vagrant ssh -c` per step;
- time from check-lab's start to its first remote command, SSH settings cached (goal ≤ 0.2 s) and not,
  next to a bare paramiko script that does nothing but connect and send one command (the floor);
- the import of the checker for `check-lab --help` (goal ≤ 0.1 s);
- a no-op re-provision (goal ≤ 2 s) next to `vagrant ssh-config`'s own time;
- `lab-env up` to ready for the container VM (goal ≤ 15 s);
- the import time of `checker` and the peak memory of a check-lab run.

Standard library only (plus this project). The figures also go to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(argv: list[str], cwd: Path, env: dict, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if check and proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-2000:]}")
    return seconds, proc


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Project:
    """A throwaway Vagrant project with the course's Vagrantfile, on the test environment."""

    def __init__(self, settings: dict, lab_settings: dict[str, str]):
        self.root = Path(tempfile.mkdtemp(prefix="check-lab-bench-"))
        shutil.copy2(REPO / "Vagrantfile", self.root)
        (self.root / "provision").mkdir()
        for name in ("guest.py", "boxes.json"):
            shutil.copy2(REPO / "provision" / name, self.root / "provision" / name)
        shutil.copytree(REPO / "provision" / "container-vm", self.root / "provision" / "container-vm")
        (self.root / ".lab-env").write_text("".join(f"{k}={v}\n" for k, v in lab_settings.items()))
        self.env = {**os.environ, "DOCKER_HOST": settings["docker_host"], "NO_COLOR": "1",
                    "VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1", "DOCKER_BUILDKIT": "0"}

    def run(self, *argv: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        return timed(list(argv), self.root, self.env, check)

    def ssh_config_file(self) -> Path:
        _s, proc = self.run("vagrant", "ssh-config", "default")
        path = self.root / "ssh_config"
        path.write_text(proc.stdout)
        return path

    def destroy(self) -> None:
        self.run("vagrant", "destroy", "-f", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def lab_commands(lab_id: str) -> list[str]:
    """A lab's commands, one per step (run in its files' folder, which they know as $LAB_DIR), then the
    clean-up a person would do."""
    from checker import lab as labs

    lab = labs.find(lab_id)
    plan = labs.Plan(lab, lab.values())
    commands = []
    for step in lab.steps:
        command = plan.command(step)
        if step.sudo:
            command = f"sudo sh -c {shlex.quote(command)}"
        commands.append(f"{command} || true" if step.may_fail else command)
    commands.append("docker rm -f " + " ".join(plan.resources("containers")) + " >/dev/null")
    commands.append("docker rmi " + " ".join(plan.resources("images") + plan.resources("pulls")) + " >/dev/null")
    return commands


def raw_lab_07(project: Project, root: str = "bench-lab") -> tuple[Path, str]:
    """Lab 07's files uploaded to the machine (~/ROOT/07) and its commands as one raw shell script
    (bench.course.raw_script): the project's ssh_config and the script, for `ssh … bash -s`."""
    from bench.course import raw_script

    ssh_cfg = project.ssh_config_file()
    tar = project.root / "bench-course.tar"
    script = raw_script(["07"], {}, root, tar)
    subprocess.run(["scp", "-q", "-F", str(ssh_cfg), str(tar), "default:"], check=True, cwd=project.root)
    return ssh_cfg, script


def raw_ssh(project: Project, ssh_cfg: Path, script: str) -> float:
    """One `ssh` running the script on the machine: its wall time."""
    started = time.perf_counter()
    subprocess.run(["ssh", "-F", str(ssh_cfg), "default", "bash -s"], input=script, text=True, check=True,
                   cwd=project.root, env=project.env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


FLOOR = """
import sys, time, json
sys.modules.setdefault("invoke", None)
import paramiko
from pathlib import Path
data = json.loads(next(Path(".vagrant/machines/default").glob("*/check-lab-ssh.json")).read_text())["ssh"]
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect(data["host"], port=data["port"], username=data["user"], key_filename=list(data["key_files"]),
          look_for_keys=False, allow_agent=False)
ch = c.get_transport().open_session()
sent = time.time()
ch.exec_command("true")
stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
import os
born = time.time() - (float(Path("/proc/uptime").read_text().split()[0]) - int(stat[19]) / os.sysconf("SC_CLK_TCK"))
print(sent - born)
"""

HELP_IMPORT = ("import time; t = time.perf_counter(); import checker.cli; checker.cli.build_parser().format_help(); "
               "print(time.perf_counter() - t)")


def startup_profile(project: Project) -> dict[str, float]:
    """Where the time to the first remote command goes: interpreter start, what is imported before the
    connection opens (from `python -X importtime`), and the SSH connection itself."""
    out: dict[str, float] = {}
    seconds, _ = timed([sys.executable, "-c", "pass"], project.root, project.env)
    out["python start (no imports)"] = seconds
    _s, proc = timed([sys.executable, "-X", "importtime", "-c",
                      "import sys; sys.modules.setdefault('invoke', None); import checker.cli, checker.targets.vagrant, "
                      "paramiko"], project.root, project.env)
    tops: dict[str, int] = {}
    for match in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", proc.stderr):
        if len(match.group(2)) <= 1:  # top-level imports only
            package = match.group(3).split(".")[0]
            tops[package] = tops.get(package, 0) + int(match.group(1))
    for package, micro in sorted(tops.items(), key=lambda kv: -kv[1])[:3]:
        out[f"import {package} (before connecting)"] = micro / 1e6
    probe = ("import time, sys; sys.modules.setdefault('invoke', None); import paramiko; "
             "from provision.machines import MachineData; from pathlib import Path; "
             "cfg, _p = MachineData(Path('.')).cached_ssh_config(); c = paramiko.SSHClient(); "
             "c.set_missing_host_key_policy(paramiko.AutoAddPolicy()); t = time.perf_counter(); "
             "c.connect(cfg.host, port=cfg.port, username=cfg.user, key_filename=list(cfg.key_files), "
             "look_for_keys=False, allow_agent=False); t1 = time.perf_counter(); "
             "ch = c.get_transport().open_session(); t2 = time.perf_counter(); ch.exec_command('true'); "
             "ch.recv_exit_status(); print(t1 - t, t2 - t1, time.perf_counter() - t2)")
    _s, proc = timed([sys.executable, "-c", probe], project.root, {**project.env, "PYTHONPATH": str(REPO)})
    connect, session, command = (float(x) for x in proc.stdout.split())
    out["SSH connect + key exchange + auth"] = connect
    out["the server opens a session channel"] = session
    out["one command on the open channel"] = command
    return out


def watch_figures(project: Project) -> dict[str, float]:
    """`--watch` while a scripted student types lab 07: how long after the evidence each claim is ticked
    (the containers' sizes after the fifth `docker run` returns, the stop after `docker stop` returns);
    then an idle watch: the share of a core it uses when nothing happens."""
    from checker.targets import TargetOptions, open_target
    from tests.student import Student, course_commands
    from tests.variants import LAB07

    out: dict[str, float] = {}
    report = project.root / "watch.json"
    watch = subprocess.Popen([str(BIN / "check-lab"), "07", "--watch", "--watch-timeout", "300", "--json",
                              str(report)], cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    while "Ctrl-C when you are done" not in (watch.stdout.readline() or "Ctrl-C when you are done"):
        pass
    os.chdir(project.root)
    ssh = open_target(TargetOptions())
    student = Student(ssh)
    student.clone(LAB07, "labs/07-FS_layering")
    # The course's commands, with the time each one returned (by the VM's clock, which the watch shares).
    stamped = []
    for command in course_commands(LAB07 / "course" / "README.md"):
        stamped += [command, "date +%s.%N >&2" if command != "sudo su" else "true"]
    typed = student.do(stamped)
    watch.communicate(timeout=120)
    times = [float(x) for x in typed.stderr.split() if re.fullmatch(r"\d+\.\d+", x)]
    commands = [c for c in course_commands(LAB07 / "course" / "README.md") if c != "sudo su"]
    returned = dict(zip(commands, times))
    data = json.loads(report.read_text())["timings"]
    start = data["watch_started_at"]
    run_done = next(t for c, t in returned.items() if c.startswith("docker run"))
    stop_done = next(t for c, t in returned.items() if c.startswith("docker stop"))
    out["watch_tick_after_run_s"] = start + data["ticked.container-writable-layer-small"] - run_done
    out["watch_tick_after_stop_s"] = start + data["ticked.containers-stopped"] - stop_done
    ssh.run("docker rmi my-image:1.0 my-base-image:1.0 ubuntu:18.04", timeout=120)
    student.forget()
    ssh.close()
    # Idle: a watch with nothing happening, for 20 s after its first look.
    watch = subprocess.Popen([str(BIN / "check-lab"), "07", "--watch", "--watch-timeout", "40"], cwd=project.root,
                             env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while "Ctrl-C when you are done" not in (watch.stdout.readline() or "Ctrl-C when you are done"):
        pass

    def cpu() -> float:
        fields = Path(f"/proc/{watch.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before, t0 = cpu(), time.monotonic()
    time.sleep(20)
    out["watch_idle_cpu_share"] = (cpu() - before) / (time.monotonic() - t0)
    watch.send_signal(2)
    watch.communicate(timeout=60)
    return out


def libvirt_up(settings: dict, testenv) -> float:
    """`lab-env up` of a libvirt VM from the offline box, timed; then destroyed."""
    testenv.ensure_libvirt()
    testenv.ensure_box("bookworm")
    project = Project(settings, {**testenv.lab_settings(settings), **testenv.libvirt_settings("bookworm")})
    try:
        seconds, _ = project.run(str(BIN / "lab-env"), "up", "--provider", "libvirt")
        return seconds
    finally:
        project.destroy()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measure (default 3)")
    parser.add_argument("--json", default="bench-results.json", help="where to write the figures")
    parser.add_argument("--libvirt", action="store_true",
                        help="also time `lab-env up` of a real libvirt VM (QEMU/TCG here; a few minutes)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from tests.testenv import env as testenv

    settings = testenv.start()
    project = Project(settings, testenv.lab_settings(settings))
    figures: dict[str, float] = {}
    runs: dict[str, list[float]] = {k: [] for k in ("check_lab", "raw_ssh", "naive", "first_cmd_warm",
                                                    "first_cmd_floor", "first_cmd_cold", "noop_provision",
                                                    "ssh_config", "help_import")}
    peak_kb = 0
    try:
        # lab-env up to ready, container VM
        seconds, _ = project.run(str(BIN / "lab-env"), "up", "--provider", "docker")
        figures["lab_env_up_docker_s"] = seconds

        ssh_cfg, script = raw_lab_07(project)
        commands = lab_commands("07")
        project.run("ssh", "-F", str(ssh_cfg), "default", "mkdir -p bench-lab/07 && tar xf bench-course.tar -C bench-lab")

        for rep in range(args.reps):
            # one check-lab run (warm cache), the raw script, the naive way, in turn
            seconds, proc = project.run(str(BIN / "check-lab"), "07", "--json", str(project.root / "r.json"))
            runs["check_lab"].append(seconds)
            runs["first_cmd_warm"].append(json.loads((project.root / "r.json").read_text())["timings"]
                                          ["first_command_s"])
            # the floor: a bare paramiko script, from its start to its first command, right after
            for _ in range(3):
                _s, proc = project.run(sys.executable, "-c", FLOOR)
                runs["first_cmd_floor"].append(float(proc.stdout.strip()))
                project.run(str(BIN / "check-lab"), "07", "--observe", "--json", str(project.root / "o.json"),
                            check=False)
                runs["first_cmd_warm"].append(json.loads((project.root / "o.json").read_text())["timings"]
                                              ["first_command_s"])
            _s, proc = timed([sys.executable, "-c", HELP_IMPORT], REPO, os.environ)
            runs["help_import"].append(float(proc.stdout.strip()))
            peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)

            runs["raw_ssh"].append(raw_ssh(project, ssh_cfg, script))

            started = time.perf_counter()
            for command in commands:
                project.run("vagrant", "ssh", "-c", f"cd ~/bench-lab/07 && export LAB_DIR=$PWD && {command}")
            runs["naive"].append(time.perf_counter() - started)

            seconds, _ = project.run(str(BIN / "lab-env"), "provision")
            runs["noop_provision"].append(seconds)
            seconds, _ = project.run("vagrant", "ssh-config", "default")
            runs["ssh_config"].append(seconds)

            # cold: no cached SSH settings, so Vagrant is asked first
            cache = next((project.root / ".vagrant" / "machines" / "default").glob("*/check-lab-ssh.json"), None)
            if cache:
                cache.unlink()
            project.run(str(BIN / "check-lab"), "07", "--json", str(project.root / "r.json"))
            runs["first_cmd_cold"].append(json.loads((project.root / "r.json").read_text())["timings"]
                                          ["first_command_s"])

        _s, proc = timed([sys.executable, "-X", "importtime", "-c", "import checker.cli, checker.runner"],
                         REPO, os.environ)
        total_us = sum(int(m.group(1)) for m in re.finditer(r"import time:\s+(\d+) \|", proc.stderr))
        figures["import_checker_s"] = total_us / 1e6
        figures["peak_rss_mb"] = peak_kb / 1024
        profile = startup_profile(project)
        figures.update(watch_figures(project))
    finally:
        project.destroy()
    if args.libvirt:
        figures["lab_env_up_libvirt_s"] = libvirt_up(settings, testenv)

    for key, values in runs.items():
        figures[f"{key}_s"] = median(values)
    figures["ratio_check_lab_vs_raw_ssh"] = figures["check_lab_s"] / figures["raw_ssh_s"]
    figures["ratio_naive_vs_check_lab"] = figures["naive_s"] / figures["check_lab_s"]

    rows = [
        ("check-lab 07 (warm cache)", f"{figures['check_lab_s']:.2f} s", ""),
        ("same commands as one raw ssh script", f"{figures['raw_ssh_s']:.2f} s", ""),
        ("  ratio check-lab / raw ssh", f"{figures['ratio_check_lab_vs_raw_ssh']:.2f}", "goal ≤ 1.15"),
        ("naive: one `vagrant ssh -c` per step", f"{figures['naive_s']:.2f} s",
         f"{figures['ratio_naive_vs_check_lab']:.1f}× check-lab"),
        ("check-lab start → first remote command, warm", f"{figures['first_cmd_warm_s']:.3f} s", "goal ≤ 0.2 s"),
        ("  bare paramiko script → its first command", f"{figures['first_cmd_floor_s']:.3f} s",
         f"check-lab {figures['first_cmd_warm_s'] - figures['first_cmd_floor_s']:+.3f} s"),
        ("check-lab start → first remote command, cold", f"{figures['first_cmd_cold_s']:.3f} s", ""),
        ("`vagrant ssh-config` alone", f"{figures['ssh_config_s']:.2f} s", ""),
        ("no-op re-provision (lab-env provision)", f"{figures['noop_provision_s']:.2f} s", "goal ≤ 2 s"),
        ("lab-env up → ready, container VM", f"{figures['lab_env_up_docker_s']:.1f} s", "goal ≤ 15 s"),
        *([("lab-env up → ready, libvirt VM (QEMU/TCG)", f"{figures['lab_env_up_libvirt_s']:.1f} s", "goal ≤ 90 s")]
          if "lab_env_up_libvirt_s" in figures else []),
        ("import checker (python -X importtime)", f"{figures['import_checker_s']:.3f} s", ""),
        ("import for `check-lab --help`", f"{figures['help_import_s']:.3f} s", "goal ≤ 0.1 s"),
        ("peak memory of a check-lab run", f"{figures['peak_rss_mb']:.0f} MB", ""),
        ("--watch: claim ticked after the evidence (run)", f"{figures['watch_tick_after_run_s']:.2f} s", "goal ≤ 1 s"),
        ("--watch: claim ticked after the evidence (stop)", f"{figures['watch_tick_after_stop_s']:.2f} s",
         "goal ≤ 1 s"),
        ("--watch idle: share of a core", f"{figures['watch_idle_cpu_share'] * 100:.2f} %", "goal < 2 %"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nbenchmark, medians of {args.reps} (side by side, alternating):")
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>9}  {note}")
    print("\nwhere check-lab's time to its first remote command goes (one warm start):")
    for name, seconds in profile.items():
        print(f"  {name:<{width}}  {seconds:>9.3f} s")
    Path(args.json).write_text(json.dumps({"reps": args.reps, "figures": figures, "runs": runs,
                                           "startup_profile": profile}, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
