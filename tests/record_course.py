"""Record transcripts of real check-lab runs of the course's labs 02-06, 08-10 and 13-17, for the unit tests.

    python -m tests.record_course NAME [--target SPEC] [--only SCENARIO ...] [--students]

Against a running lab machine on the test environment (default: the Vagrant machine of this folder), with the
student's own `docker login` to Docker Hub's stand-in made first: each lab as the course prints it, then each
of its negatives (COURSE_VARIANTS in tests/variants.py, their set-up and tear-down run on the machine). Every
remote command and its answer goes to tests/transcripts/course/NAME/SCENARIO.json (SCENARIO: NN-pass or the
variant's id); the variant's id is kept in the transcript's meta for the replay. `--students` records
instead `check-lab NN --observe` after a scripted student typed labs 02, 03 and 05 (tests/student.py) on
the machine: NN-observe.json; what the student made is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from checker.cli import main as check_lab
from checker.targets import TargetOptions, open_target
from tests.testenv import env as testenv
from tests.variants import COURSE_VARIANTS, make_course_variant

OUT = Path(__file__).resolve().parent / "transcripts" / "course"
LABS = ["02", "03", "04", "05", "06", "08", "09", "10", "13", "14", "15", "16", "17"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="record_course")
    parser.add_argument("name", help="the engine's name, a folder under tests/transcripts/course")
    parser.add_argument("--target", default=None)
    parser.add_argument("--only", nargs="*", default=None, help="only these scenarios (NN-pass, variant ids)")
    parser.add_argument("--students", action="store_true", help="observe mode after a scripted student")
    args = parser.parse_args(argv)
    out = OUT / args.name
    out.mkdir(parents=True, exist_ok=True)
    target = ["--target", args.target] if args.target else []
    hub = {"hub": testenv.HUB_ADDR, "user": testenv.HUB_USER}
    hub["login"] = (f"printf %s {shlex.quote(testenv.hub_password())} | docker login -u {hub['user']} "
                    f"--password-stdin {hub['hub']} >/dev/null")

    def fill(text: str) -> str:
        return text.replace("{hub}", hub["hub"]).replace("{user}", hub["user"]).replace("{login}", hub["login"])

    machine = open_target(TargetOptions(args.target))
    try:
        assert machine.run(hub["login"], timeout=60).ok, "docker login to Docker Hub's stand-in failed"
        lab03 = ["--set", f"user={hub['user']}", "--set", f"registry={hub['hub']}"]
        if args.students:
            return students(machine, out, target, lab03, hub, args.only)
        for lab in LABS:
            if args.only is not None and f"{lab}-pass" not in args.only:
                continue
            code = check_lab([lab, *target, *(lab03 if lab == "03" else []), "--record", str(out / f"{lab}-pass.json"),
                              "--no-color"])
            print(f"{lab}-pass: exit {code}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            for variant in COURSE_VARIANTS:
                if args.only is not None and variant.id not in args.only:
                    continue
                folder = make_course_variant(variant, Path(tmp))
                if variant.setup:
                    machine.run(fill(variant.setup), timeout=120)
                sets = [a for k, v in variant.sets.items() for a in ("--set", f"{k}={fill(v)}")]
                path = out / f"{variant.id}.json"
                try:
                    code = check_lab([str(folder), *target, *sets, *variant.args, "--record", str(path),
                                      "--no-color"])
                finally:
                    if variant.teardown:
                        machine.run(fill(variant.teardown), timeout=120)
                data = json.loads(path.read_text())
                data["meta"]["variant"] = variant.id
                path.write_text(json.dumps(data, indent=1) + "\n")
                print(f"{variant.id}: exit {code}", file=sys.stderr)
    finally:
        machine.close()
    return 0


def students(machine, out: Path, target: list[str], lab03: list[str], hub: dict, only: list[str] | None) -> int:
    from tests.student import FOLDERS, OBSERVED, Student, typed, until_observed

    student = Student(machine)
    mine = f"{hub['hub']}/{hub['user']}/friendlyhello:1.0"
    try:
        for lab in sorted(OBSERVED):
            if only is not None and f"{lab}-observe" not in only:
                continue
            if lab == "02":
                student.clone(FOLDERS["02"], "labs/02-Build_your_image")
            if lab == "05":
                student.clone(FOLDERS["05"], "labs/05-Bind_mounts")
            if lab == "13":
                student.clone(FOLDERS["13"], "labs/13-Docker_Compose")
            if lab == "17":
                student.clone(FOLDERS["17"], "labs/17-Java_Docker_awareness")
            before, after = until_observed(lab, typed(lab, hub))
            done = student.do(before)
            assert done.ok, done.stderr[-2000:]
            code = check_lab([lab, *target, *(lab03 if lab == "03" else []), "--observe",
                              "--record", str(out / f"{lab}-observe.json"), "--no-color"])
            print(f"{lab}-observe: exit {code}", file=sys.stderr)
            if after:
                assert student.do(after).ok
    finally:
        student.forget()
        machine.run("docker rm -f $(docker ps -aq --filter ancestor=friendlyhello:1.0) "
                    "$(docker ps -aq --filter ancestor=portainer/portainer) "
                    "$(docker ps -aq --filter ancestor=docker-test:jdk10) >/dev/null 2>&1; "
                    f"docker rmi {mine} friendlyhello:1.0 python:2.7-slim openjdk:7 portainer/portainer mysql:5.7 "
                    "wordpress:latest docker-test:jdk8 docker-test:jdk9 docker-test:jdk10 openjdk:8u151 ubuntu:latest "
                    ">/dev/null 2>&1; "
                    "docker volume rm portainer_data >/dev/null 2>&1; true",
                    timeout=300)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
