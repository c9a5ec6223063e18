"""For every claim, an environment where it is false makes `check-lab` exit 1 naming that claim.

Broken lab variants (tests/variants.py) and broken situations on a real container VM: the base image
already on the engine, a stop that does not finish, an engine that stores images with vfs.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import run_check
from tests.variants import VARIANTS, make_variant

pytestmark = pytest.mark.integration


def verdicts(report_path) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in json.loads(report_path.read_text())["claims"]}


def lab_state(vm) -> list[str]:
    ssh = vm.ssh()
    try:
        res = ssh.run("docker ps -a --format 'container {{.Names}} {{.ID}}'; "
                      "docker image ls --format 'image {{.Repository}}:{{.Tag}} {{.ID}}'")
        assert res.ok, res.stderr
        return sorted(res.stdout.splitlines())
    finally:
        ssh.close()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_broken_lab_variant_fails_on_its_claims(variant, shared_vm, monkeypatch, tmp_path, capsys):
    folder = make_variant(variant, tmp_path)
    before = lab_state(shared_vm)
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, shared_vm, str(folder), "--json", str(report))
    out = capsys.readouterr().out
    assert code == 1, out
    got = verdicts(report)
    failing = {cid for cid, v in got.items() if v != "pass"}
    expected = VARIANTS[variant][1]
    # Exactly these: the claims the variant does not touch still hold.
    assert failing == expected, got
    for cid in expected:
        assert cid in out
    assert lab_state(shared_vm) == before


def test_base_image_already_present_is_judged_from_the_stored_image_and_kept(shared_vm, monkeypatch, tmp_path,
                                                                             capsys):
    """A student who did the lab by hand first (or whose other containers use ubuntu:18.04) is not failed for
    it: the pull has nothing to download, so the claim is judged from the stored image, and says so."""
    ssh = shared_vm.ssh()
    assert ssh.run("docker pull -q ubuntu:18.04", timeout=300).ok
    before = lab_state(shared_vm)
    report = tmp_path / "r.json"
    try:
        code = run_check(monkeypatch, shared_vm, "07", "--json", str(report))
        out = capsys.readouterr().out
        assert code == 0, out
        pulled = {c["id"]: c for c in json.loads(report.read_text())["claims"]}["layers-pulled-separately"]
        assert "judged from the stored image" in pulled["observed"] and "already" in pulled["observed"]
        # The user's image is not the checker's to remove.
        assert lab_state(shared_vm) == before
    finally:
        ssh.run("docker rmi ubuntu:18.04")
        ssh.close()


def test_stop_that_does_not_finish_fails_containers_stopped(shared_vm, monkeypatch, tmp_path, capsys):
    before = lab_state(shared_vm)
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, shared_vm, "07", "--timeout", "stop=2",
                     "--json", str(report))
    out = capsys.readouterr().out
    assert code == 1, out
    data = json.loads(report.read_text())
    got = {c["id"]: c["verdict"] for c in data["claims"]}
    assert got["containers-stopped"] == "fail"
    assert [c for c, v in got.items() if v != "pass"] == ["containers-stopped"]
    assert data["steps"][-1]["status"] == "timed-out"
    assert "still running" in {c["id"]: c for c in data["claims"]}["containers-stopped"]["observed"]
    # Even so, cleanup removed the still-running containers.
    assert lab_state(shared_vm) == before


def test_vfs_engine_fails_driver_dir_and_disk_formula(project_factory, monkeypatch, tmp_path, capsys):
    vm = project_factory("vfs", {"LAB_STORAGE_DRIVER": "vfs"})
    vm.up()
    report = tmp_path / "r.json"
    code = run_check(monkeypatch, vm, "07", "--json", str(report))
    out = capsys.readouterr().out
    assert code == 1, out
    got = verdicts(report)
    assert got["layers-stored-in-driver-dir"] == "fail"
    assert got["disk-total-formula"] == "fail"
    data = json.loads(report.read_text())
    claims = {c["id"]: c for c in data["claims"]}
    growth = claims["disk-total-formula"]["details"]["growth"]
    image_size = claims["image-sizes-equal"]["details"]["sizes"]["image"]
    assert growth > 2 * image_size  # copies of the image, not thin layers
    assert data["engine"]["storage_driver"] == "vfs"
