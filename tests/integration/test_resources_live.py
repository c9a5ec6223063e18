"""Resource kinds on a real engine, through a lab that makes a volume and a network (tests/labs/volume-network,
a test fixture): it removes exactly what it made, never touches a volume of the student's own (a volume
cannot be set aside, so even --replace stops), and the next run cleans up an interrupted run's leftovers and
puts back what that run had set aside. Through tests/labs/removed-as-it-stops (a test fixture), the clean-up
waits for containers the engine is still removing (started with --rm) before it removes their image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import machine_state as state
from tests.integration.conftest import run_check
from tests.integration.conftest import sh as shell

pytestmark = pytest.mark.integration

LAB = Path(__file__).resolve().parents[1] / "labs" / "volume-network"
REMOVED_AS_IT_STOPS = Path(__file__).resolve().parents[1] / "labs" / "removed-as-it-stops"


def sh(vm, command: str):
    res = shell(vm, command, timeout=300)
    assert res.ok, res.stderr
    return res


def passing_run_notes(vm, lab: Path, monkeypatch, tmp_path, capsys) -> list[str]:
    """Check `lab` on the machine: it passes; the notes of its report (what its clean-up removed)."""
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, vm, str(lab), "--json", str(report))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(report.read_text())["notes"]


def test_the_lab_removes_its_volume_and_network_and_nothing_else(shared_vm, monkeypatch, tmp_path, capsys):
    before = state(shared_vm)
    notes = passing_run_notes(shared_vm, LAB, monkeypatch, tmp_path, capsys)
    assert "removed the lab's volumes (lab-data)" in notes and "removed the lab's networks (lab-net)" in notes
    assert state(shared_vm) == before


def test_containers_the_engine_is_still_removing_are_waited_for(shared_vm, monkeypatch, tmp_path, capsys):
    # Two containers started with --rm, stopped by the lab's last step: the engine removes them after the stop
    # returns, slowly (many files in their layers). The clean-up waits for that, then removes the image the lab
    # pulled: otherwise "removal already in progress" and the image in use by a container (CI saw it on lab 10).
    before = state(shared_vm)
    notes = passing_run_notes(shared_vm, REMOVED_AS_IT_STOPS, monkeypatch, tmp_path, capsys)
    assert "removed the lab's containers (lab-removed)" in notes
    if not any(line.startswith("image ubuntu:18.04 ") for line in before):  # (the lab pulled it)
        assert "removed the image(s) the lab pulled (ubuntu:18.04)" in notes, notes
    assert state(shared_vm) == before


def test_a_students_own_volume_is_never_touched(shared_vm, monkeypatch, capsys):
    # (ubuntu:18.04 pulled by `docker run` if it is not there, and then removed again: the VM is shared.)
    sh(shared_vm, "had=$(docker image ls -q ubuntu:18.04); docker volume create lab-data >/dev/null && "
                  "docker run --rm -v lab-data:/data ubuntu:18.04 sh -c 'echo mine > /data/notes' 2>/dev/null && "
                  "{ [ -n \"$had\" ] || docker rmi ubuntu:18.04 >/dev/null; }")
    try:
        before = state(shared_vm)
        code = run_check(monkeypatch, shared_vm, str(LAB))
        err = capsys.readouterr().err
        assert code == 3 and "volume lab-data already exists on the target and was not created by check-lab" in err
        code = run_check(monkeypatch, shared_vm, str(LAB), "--replace")
        err = capsys.readouterr().err
        assert code == 3 and "--replace cannot set aside volume lab-data" in err
        assert state(shared_vm) == before
        assert sh(shared_vm, "sudo cat /var/lib/docker/volumes/lab-data/_data/notes").stdout == "mine\n"
    finally:
        sh(shared_vm, "docker volume rm lab-data >/dev/null")


def test_leftovers_of_an_interrupted_run_are_removed_by_the_next(shared_vm, monkeypatch, tmp_path, capsys):
    before = state(shared_vm)
    # What a run killed after its third step leaves: its state file (started a minute ago, when none of the
    # lab's names existed), a volume and a network it made, and the student's container it had set aside.
    sh(shared_vm, "tar cf - --files-from /dev/null | docker import - student/tiny:1 >/dev/null && "
                  "docker create --name lab-writer-check-lab-saved student/tiny:1 /nothing >/dev/null && "
                  "docker volume create lab-data >/dev/null && docker network create lab-net >/dev/null && "
                  "mkdir -p ~/.check-lab && cat > ~/.check-lab/run-vn.json <<EOF\n"
                  '{"lab": "vn", "started": $(( $(date +%s) - 60 )), "pulled": [], "existing": {}, '
                  '"moved": [["containers", "lab-writer", "lab-writer-check-lab-saved"]]}\nEOF')
    try:
        code = run_check(monkeypatch, shared_vm, str(LAB))
        err = capsys.readouterr().err
        # The leftovers are gone, and the student's container is back under its own name: in the lab's way
        # again, so this run stops (it was not started with --replace).
        assert code == 3 and "container lab-writer already exists on the target" in err
        listing = state(shared_vm)
        assert not any(line.startswith(("volume lab-data", "network lab-net ")) for line in listing)
        assert any(line.startswith("container lab-writer ") for line in listing)
        assert not any("check-lab-saved" in line for line in listing)
        assert "run-vn.json" not in sh(shared_vm, "ls -a ~/.check-lab").stdout
    finally:
        sh(shared_vm, "docker rm -f lab-writer lab-writer-check-lab-saved >/dev/null 2>&1; "
                      "docker rmi student/tiny:1 >/dev/null 2>&1; docker volume rm lab-data >/dev/null 2>&1; "
                      "docker network rm lab-net >/dev/null 2>&1; true")
    assert state(shared_vm) == before
