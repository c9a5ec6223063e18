"""Record transcripts of real check-lab runs of labs 11 and 12 on the course's three swarm machines, for the unit
tests (tests/unit/test_swarm_replay.py).

    python -m tests.record_swarm NAME [--only SCENARIO ...]

On the test environment: three container VMs (`vagrant up swarmmanager swarmnode1 swarmnode2` in a
throwaway copy of the project), new ones for each scenario (an engine that has been a swarm manager on a
kernel without IP_VS keeps a broken ingress network). Each scenario, the lab as the course prints it
(11-pass, 12-pass) and each of their negatives (SWARM_VARIANTS), writes one transcript per machine:
tests/transcripts/swarm/NAME/SCENARIO.MACHINE.json (the variant's id in the transcript's meta).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from checker.cli import main as check_lab
from tests.testenv import env as testenv
from tests.variants import SWARM_VARIANTS, make_course_variant

OUT = Path(__file__).resolve().parent / "transcripts" / "swarm"
SWARM = ("swarmmanager", "swarmnode1", "swarmnode2")
REPLICAS = "6"  # the course's 50 takes minutes on two cores; the claim is the same


def main(argv: list[str]) -> int:
    from tests.integration.conftest import VagrantProject
    from tests.integration.test_swarm import fresh, vagrant

    parser = argparse.ArgumentParser(prog="record_swarm")
    parser.add_argument("name", help="the engine's name, a folder under tests/transcripts/swarm")
    parser.add_argument("--only", nargs="*", default=None, help="only these scenarios (11-pass, 12-pass, variant ids)")
    args = parser.parse_args(argv)
    out = OUT / args.name
    out.mkdir(parents=True, exist_ok=True)
    settings = testenv.start()
    with tempfile.TemporaryDirectory(prefix="record-swarm-") as tmp:
        project = VagrantProject(Path(tmp) / "project", settings)
        os.environ.update({k: v for k, v in project.env.items() if k.startswith(("DOCKER_", "VAGRANT_"))})
        vagrant(project, "up", *SWARM, "--provider=docker")
        try:
            scenarios = [("11-pass", None), ("12-pass", None)] + [(v.id, v) for v in SWARM_VARIANTS]
            for i, (scenario, variant) in enumerate(scenarios):
                if args.only is not None and scenario not in args.only:
                    continue
                if i:
                    fresh(project)
                lab = scenario[:2]
                if variant:
                    (Path(tmp) / scenario).mkdir(exist_ok=True)
                    lab = str(make_course_variant(variant, Path(tmp) / scenario))
                path = out / f"{scenario}.json"
                sets = ["--set", f"replicas={REPLICAS}"] if scenario.startswith("11") else []
                code = check_lab([lab, "--target", f"vagrant:{project.root}", *sets, "--record", str(path),
                                  "--no-color"])
                if variant:
                    for machine in SWARM:
                        recorded = path.with_name(f"{scenario}.{machine}.json")
                        data = json.loads(recorded.read_text())
                        data["meta"]["variant"] = variant.id
                        recorded.write_text(json.dumps(data, indent=1) + "\n")
                print(f"{scenario}: exit {code}", file=sys.stderr)
            if args.only is None or "student-observe" in args.only:
                record_student(project, out)
        finally:
            vagrant(project, "destroy", "-f", *SWARM)
    return 0


def record_student(project, out: Path) -> None:
    """A student types labs 11 and 12 as printed (tests/student.py), then `check-lab 11 --observe` and
    `check-lab 12 --observe`: 11-student-observe and 12-student-observe."""
    from tests.integration.test_swarm import fresh, leave_the_students_swarm, typed_on
    from tests.student import type_on_machines

    fresh(project)
    try:
        for lab in ("11", "12"):
            type_on_machines(lab, lambda machine, command: typed_on(project, machine, command))
            code = check_lab([lab, "--target", f"vagrant:{project.root}", "--observe", "--no-color",
                              "--record", str(out / f"{lab}-student-observe.json")])
            print(f"{lab}-student-observe: exit {code}", file=sys.stderr)
    finally:
        leave_the_students_swarm(project)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
