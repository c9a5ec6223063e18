"""The instructors' workflows: valid for GitHub (the workflow schema check-jsonschema vendors from
SchemaStore), and the class workflow's own shell steps splitting a class into batches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows import WORKFLOWS, batches, run_step

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def test_every_workflow_is_valid_for_github():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"grade-class.yml", "lab-container-vm.yml", "lab-vm-kvm.yml"}
    done = lint(*files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_refuses_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (WORKFLOWS / "grade-class.yml").read_text().replace("    runs-on: ubuntu-24.04\n    timeout-minutes: 5\n",
                                                                "    timeout-minutes: five\n", 1)
    broken.write_text(text)
    assert lint(broken).returncode != 0


CLASS = """# the class of 2026
alice = ssh://vagrant@10.0.0.11

bob = ssh://vagrant@10.0.0.12
  # a comment, indented
carol = ssh://vagrant@10.0.0.13
dave = ssh://vagrant@10.0.0.14
erin = ssh://vagrant@10.0.0.15
"""


@pytest.mark.parametrize("count", [1, 2, 3, 5, 9])
def test_the_class_splits_into_batches_each_machine_once(tmp_path, count):
    class_file = tmp_path / "targets.txt"
    class_file.write_text(CLASS)
    files = batches(class_file, count, tmp_path)
    machines = [line for line in CLASS.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(files) == min(count, len(machines))
    got = [line for f in files for line in f.read_text().splitlines()]
    assert sorted(got) == sorted(machines)  # every machine in exactly one batch
    assert all(f.read_text().strip() for f in files)  # no empty batch


def test_a_class_without_machines_stops_the_plan(tmp_path):
    class_file = tmp_path / "targets.txt"
    class_file.write_text("# nobody yet\n\n")
    code, outputs, err = run_step("grade-class.yml", "plan", "Split the class into batches",
                                  {"CLASS": str(class_file), "BATCHES": "4"}, tmp_path)
    assert code == 2 and not outputs and err.strip() == f"no machine in {class_file}"

