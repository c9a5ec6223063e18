"""The instructors' GitHub Actions workflows (.github/workflows/), read as GitHub reads them, and one step's
own shell script run here with bash, as the runner would (its `env:`, a GITHUB_OUTPUT file)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def step(workflow: str, job: str, name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / workflow).read_text())
    for item in data["jobs"][job]["steps"]:
        if item.get("name") == name:
            return item
    raise KeyError(f"{workflow}: job {job} has no step {name!r}")


def run_step(workflow: str, job: str, name: str, env: dict[str, str], cwd: Path) -> tuple[int, dict[str, str], str]:
    """Run a step's `run:` script with bash -e (GitHub's default shell) in `cwd`, its `env:` given by `env`
    (the expressions' values); returns the exit status, what it wrote to $GITHUB_OUTPUT, and its stderr."""
    script = step(workflow, job, name)["run"]
    output = cwd / f".github-output-{job}"
    output.write_text("")
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                          env={**os.environ, **env, "GITHUB_OUTPUT": str(output)}, capture_output=True, text=True,
                          timeout=60)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done.returncode, outputs, done.stderr


def batches(class_file: Path, count: int, cwd: Path) -> list[Path]:
    """The class split as grade-class.yml splits it: its `plan` job, then each `check` job's batch file."""
    code, outputs, err = run_step("grade-class.yml", "plan", "Split the class into batches",
                                  {"CLASS": str(class_file), "BATCHES": str(count)}, cwd)
    assert code == 0, err
    files = []
    for batch in yaml.safe_load(outputs["batches"]):
        folder = cwd / f"batch-{batch}"
        folder.mkdir(exist_ok=True)
        code, _, err = run_step("grade-class.yml", "check", "This job's batch of the class",
                                {"CLASS": str(class_file), "BATCH": str(batch), "BATCHES": outputs["batches"]}, folder)
        assert code == 0, err
        files.append(folder / "batch.txt")
    return files
