"""Record transcripts of real check-lab runs, for the unit tests to replay.

    python -m tests.record_transcripts NAME [--target SPEC] [--only SCENARIO ...]

Runs lab 07 and each broken variant (tests/variants.py) against a running lab machine (default: the
Vagrant machine of this folder, e.g. after `scripts/run-lab`), then lets a scripted student type the
course's commands (tests/student.py) and records `--observe` after them; every remote command and its
answer goes to tests/transcripts/NAME/SCENARIO.json. NAME says which engine, e.g. e1-bookworm-docker20.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from checker.cli import main as check_lab
from tests.variants import VARIANTS, make_variant

OUT = Path(__file__).resolve().parent / "transcripts"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="record_transcripts")
    parser.add_argument("name", help="the engine's name, a folder under tests/transcripts")
    parser.add_argument("--target", default=None)
    parser.add_argument("--only", nargs="*", default=None, help="only these scenarios (pass, variant names, observe)")
    args = parser.parse_args(argv)
    out = OUT / args.name
    out.mkdir(parents=True, exist_ok=True)
    target = ["--target", args.target] if args.target else []
    with tempfile.TemporaryDirectory() as tmp:
        scenarios = {"pass": "07"}
        scenarios.update({name: str(make_variant(name, Path(tmp))) for name in sorted(VARIANTS)})
        for scenario, lab in scenarios.items():
            if args.only is not None and scenario not in args.only:
                continue
            code = check_lab([lab, *target, "--record", str(out / f"{scenario}.json"), "--no-color"])
            print(f"{scenario}: exit {code}", file=sys.stderr)
    if args.only is not None and "observe" not in args.only:
        return 0
    # The course's own commands typed by a student, then observe mode on what they left.
    from checker.targets import TargetOptions, open_target
    from tests.student import Student, course_commands
    from tests.variants import LAB07

    ssh = open_target(TargetOptions(args.target))
    try:
        student = Student(ssh)
        student.clone(LAB07, "labs/07-FS_layering")
        typed = student.do(course_commands(LAB07 / "course" / "README.md"))
        print(f"student: exit {typed.exit_status}", file=sys.stderr)
        code = check_lab(["07", *target, "--observe", "--record", str(out / "observe.json"), "--no-color"])
        print(f"observe: exit {code}", file=sys.stderr)
        ssh.run("docker rmi my-image:1.0 my-base-image:1.0 ubuntu:18.04; docker builder prune -af", timeout=120)
        student.forget()
    finally:
        ssh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
