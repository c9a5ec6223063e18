"""`check-lab course` next to the same commands as one raw `ssh` script, side by side in one run.

    .venv/bin/python -m bench.course [--reps N] [--labs 02-06,08-10,16] [--json FILE]

It brings up its own container VM (E1) on the offline test environment, logs in to Docker Hub's stand-in
there (lab 03 pushes), and alternates: `check-lab course --labs …`, then one `ssh` running a shell script
made of the same labs' commands (each lab's files uploaded once beforehand, the values a step captures kept
in shell variables, then what each lab created removed, as check-lab does). Goal: ≤ 1.10×. What check-lab
adds: its probes (docker inspect and friends, batched), the lock, the uploads and the clean-up checks.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from bench.run import BIN, REPO, Project, median

CAPTURE = ("import re, sys; m = re.search(sys.argv[1], sys.stdin.read(), re.M); "
           "print((m.group(1) if m.groups() else m.group(0)) if m else \"\")")


def raw_script(lab_ids: list[str], sets: dict[str, str], root: str, tar: Path) -> str:
    """The labs' commands as one shell script, and their files in `tar` (folder NN/ per lab)."""
    from checker import lab as labs

    lines = ["set -e", f'rm -rf "$HOME/{root}" && mkdir -p "$HOME/{root}" && tar xf ~/bench-course.tar -C "$HOME/{root}"']
    with tarfile.open(tar, "w") as archive:
        for lab_id in lab_ids:
            lab = labs.find(lab_id)
            plan = labs.Plan(lab, lab.values({k: v for k, v in sets.items() if k in lab.variables}))
            folder = f'"$HOME/{root}/{lab.id}"'
            for f in lab.files:
                data = plan.file_bytes(f)  # what check-lab uploads, rendered where a lab says so
                info = tarfile.TarInfo(f"{lab.id}/{f.dest}")
                info.size, info.mode = len(data), 0o755 if f.dest.endswith(".sh") else 0o644
                archive.addfile(info, io.BytesIO(data))
            markers = {f"captured.{name}": f"CAPMARK{name}END" for step in lab.steps for name, _p, _o in step.captures}
            lines.append(f"export LAB_DIR={folder} && mkdir -p \"$LAB_DIR\"")
            for step in lab.steps:
                command = plan.command(step, markers)
                for name in markers:
                    command = command.replace(markers[name], "${CAP_" + name.split(".", 1)[1] + "}")
                if step.sudo:
                    command = f"sudo sh -c {shlex.quote(command)}"
                body = f"(cd \"$LAB_DIR\" && {command}\n)" + (" || true" if step.may_fail else "")
                if step.captures:
                    lines.append(f"out=$( {body} )")
                    lines.append('printf "%s\\n" "$out"')
                    for name, pattern, _observe in step.captures:
                        lines.append(f"CAP_{name}=$(printf '%s' \"$out\" | python3 -c {shlex.quote(CAPTURE)} "
                                     f"{shlex.quote(pattern)})")
                else:
                    lines.append(body)
            # What the lab made, removed (check-lab removes what it made, pulls included).
            res = plan.all_resources()
            if res.get("containers"):
                lines.append(f"docker rm -f {' '.join(res['containers'])} >/dev/null 2>&1 || true")
            if res.get("volumes"):
                lines.append(f"docker volume rm -f {' '.join(res['volumes'])} >/dev/null 2>&1 || true")
            if res.get("networks"):
                lines.append(f"docker network rm {' '.join(res['networks'])} >/dev/null 2>&1 || true")
            images = res.get("images", []) + res.get("pulls", [])
            if images:
                lines.append(f"docker rmi -f {' '.join(images)} >/dev/null 2>&1 || true")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.course")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of each (default 2)")
    parser.add_argument("--labs", default="02-06,08-10,16")
    parser.add_argument("--json", default="bench-course.json", help="where to write the figures")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from checker.course import select
    from checker import lab as labs
    from tests.testenv import env as testenv

    settings = testenv.start()
    project = Project(settings, testenv.lab_settings(settings))
    sets = {"user": testenv.HUB_USER, "registry": testenv.HUB_ADDR}
    lab_ids = [lab.id for lab in select(labs.available(), args.labs)]
    runs: dict[str, list[float]] = {"check_lab_course": [], "raw_ssh": []}
    try:
        project.run(str(BIN / "lab-env"), "up", "--provider", "docker")
        ssh_cfg = project.ssh_config_file()
        password = testenv.hub_password()
        project.run("ssh", "-F", str(ssh_cfg), "default",
                    f"printf %s {shlex.quote(password)} | docker login -u {testenv.HUB_USER} --password-stdin "
                    f"{testenv.HUB_ADDR} >/dev/null")
        tar = project.root / "bench-course.tar"
        script = raw_script(lab_ids, sets, "bench-course", tar)
        (project.root / "bench-course.sh").write_text(script)
        subprocess.run(["scp", "-q", "-F", str(ssh_cfg), str(tar), "default:"], check=True, cwd=project.root)
        set_args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
        for _rep in range(args.reps):
            seconds, proc = project.run(str(BIN / "check-lab"), "course", "--labs", args.labs, *set_args,
                                        "--json", str(project.root / "course.json"))
            runs["check_lab_course"].append(seconds)
            started = time.perf_counter()
            raw = subprocess.run(["ssh", "-F", str(ssh_cfg), "default", "bash -s"], input=script, text=True,
                                 capture_output=True, cwd=project.root)
            runs["raw_ssh"].append(time.perf_counter() - started)
            if raw.returncode != 0:
                raise SystemExit(f"bench: the raw script failed ({raw.returncode}):\n{raw.stdout[-1500:]}\n"
                                 f"{raw.stderr[-1500:]}")
    finally:
        project.destroy()
    figures = {f"{k}_s": median(v) for k, v in runs.items()}
    figures["ratio"] = figures["check_lab_course_s"] / figures["raw_ssh_s"]
    print(f"\ncheck-lab course --labs {args.labs} ({len(lab_ids)} labs), medians of {args.reps}, alternating:")
    print(f"  check-lab course                      {figures['check_lab_course_s']:8.1f} s")
    print(f"  the same commands, one raw ssh script {figures['raw_ssh_s']:8.1f} s")
    print(f"  ratio                                 {figures['ratio']:8.2f}   goal ≤ 1.10")
    Path(args.json).write_text(json.dumps({"reps": args.reps, "labs": lab_ids, "figures": figures, "runs": runs},
                                          indent=2) + "\n")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
