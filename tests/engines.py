"""The suite's six engines (five Docker engines and Podman), each a container VM, and `scripts/drift`: the course
on all of them at once and its drift report (which sentence of which lab holds on which engine).

E1 Debian bookworm docker.io 20.10: legacy builder, overlay2 (the engine the labs were written for).
E2 Debian trixie docker.io 26.1 + docker-buildx: BuildKit, overlay2.
E3 E2 with the containerd image store (LAB_IMAGE_STORE=containerd, set by the provisioner).
E4 Debian unstable docker.io 28.5 with containerd 2.1 and docker-buildx 0.29: BuildKit, overlay2.
E5 E4 with the containerd image store (what Docker 29 uses by default).
E6 Debian unstable's Podman 5.8 with podman-docker (LAB_ENGINE=podman), rootless for the login user.

    scripts/drift [--labs IDS] [--out DIR] [--readme]

brings the test environment and the six machines up, runs `check-lab course --targets` over them (`--labs`:
default the labs of one machine that need no Docker Hub login, 00-02, 04-10, 13-17), writes the engines'
JSON and the drift report (drift.md, drift.html, drift.json) into DIR, and destroys the machines. With
`--readme` the engines' JSON is kept in tests/transcripts/drift/course.json and the README's drift report is
made from it (tests/drift_readme.py), so the README shows what this command measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.testenv import env as testenv

REPO = Path(__file__).resolve().parent.parent
RECORDED = REPO / "tests" / "transcripts" / "drift" / "course.json"
DEFAULT_LABS = "00-02,04-10,13-17"


def engine_settings(label: str) -> dict[str, str]:
    """The LAB_* settings of one engine's container VM (E1 is the suite's own machine)."""
    return {
        "E1": {},
        "E2": testenv.vm_settings("trixie"),
        "E3": {**testenv.vm_settings("trixie"), "LAB_IMAGE_STORE": "containerd"},
        "E4": testenv.vm_settings("sid"),
        "E5": {**testenv.vm_settings("sid"), "LAB_IMAGE_STORE": "containerd"},
        "E6": {**testenv.vm_settings("sid", testenv.PODMAN_PACKAGES), "LAB_ENGINE": "podman"},
    }[label]


DOCKER_LABELS = ("E1", "E2", "E3", "E4", "E5")
LABELS = DOCKER_LABELS + ("E6",)  # the drift report's engines: Docker's five and Podman


@contextlib.contextmanager
def machines(lab_env: dict, root: Path, labels=LABELS):
    """A container VM per engine, brought up together (three at a time), destroyed on the way out."""
    from tests.integration.conftest import VagrantProject

    for suite in ("trixie", "sid"):
        testenv.ensure_container_vm(lab_env, suite)
    if "E6" in labels:
        testenv.ensure_container_vm(lab_env, "sid", testenv.PODMAN_PACKAGES)
    projects = {label: VagrantProject(root / label.lower(), lab_env, engine_settings(label)) for label in labels}
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda project: project.up(), projects.values()))
        yield projects
    finally:
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda project: project.destroy(), projects.values()))


def course_drift(projects: dict, labs: str, out: Path, jobs: int = 5) -> int:
    """`check-lab course --targets` over the machines, then `check-lab drift`: out/engines.json, the engines'
    course reports, and out/drift.md, drift.html, drift.json. The course's exit code."""
    from checker.cli import main as check_lab

    out.mkdir(parents=True, exist_ok=True)
    listing = out / "engines.txt"
    listing.write_text("".join(f"{label} = vagrant:{project.root}\n" for label, project in projects.items()))
    engines = out / "engines.json"
    code = check_lab(["course", "--labs", labs, "--targets", str(listing), "-j", str(jobs),
                      "--report", f"json:{engines}", "--no-color"])
    if engines.exists():
        check_lab(["drift", str(engines), "--markdown", str(out / "drift.md"), "--html", str(out / "drift.html"),
                   "--json", str(out / "drift.json")])
    return code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/drift", description="The course on the suite's six engines, "
                                     "and its drift report.")
    parser.add_argument("--labs", default=DEFAULT_LABS, help=f"the labs (default {DEFAULT_LABS})")
    parser.add_argument("--engines", default=",".join(LABELS),
                        help="which of E1-E6 (default all)")
    parser.add_argument("--out", type=Path, default=Path("drift"), help="where the reports go (default ./drift)")
    parser.add_argument("--readme", action="store_true",
                        help="keep the engines' JSON in tests/transcripts/drift/ and rewrite the README's drift report")
    args = parser.parse_args(argv)
    labels = [label.strip().upper() for label in args.engines.split(",") if label.strip()]
    unknown = [label for label in labels if label not in LABELS]
    if unknown or not labels:
        parser.error(f"--engines: {', '.join(unknown) or 'none given'}: the engines are {', '.join(LABELS)}")
    if args.readme and labels != list(LABELS):
        parser.error("--readme shows every engine: leave out --engines")
    lab_env = testenv.start()
    with tempfile.TemporaryDirectory(prefix="check-lab-drift-") as tmp:
        with machines(lab_env, Path(tmp), labels) as projects:
            code = course_drift(projects, args.labs, args.out)
    print(f"drift: {args.out / 'drift.md'}, drift.html, drift.json (course exit {code})")
    if args.readme and (args.out / "engines.json").exists():
        from tests import drift_readme

        RECORDED.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "engines.json", RECORDED)
        drift_readme.main([])
        print(f"drift: {RECORDED.relative_to(REPO)} kept, README's drift report rewritten")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
