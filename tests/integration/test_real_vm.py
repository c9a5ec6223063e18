"""A real VM: Vagrant's libvirt provider under QEMU/TCG (no usable KVM here), the offline Debian bookworm box
(docker.io 20.10: engine E1), brought up and provisioned by lab-env, then `check-lab 07` in it."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import run_check
from tests.integration.test_lab_env import run_lab_env
from tests.testenv import env as testenv

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def libvirt_box(lab_env):
    testenv.ensure_libvirt()
    return testenv.ensure_box("bookworm")


def test_lab_07_in_a_real_libvirt_vm(libvirt_box, project_factory, monkeypatch, capsys):
    project = project_factory("libvirt", testenv.libvirt_settings("bookworm"))
    code = run_lab_env(monkeypatch, project, "up", "--provider", "libvirt")
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "box: check-lab/bookworm" in out and "ready: run `check-lab 07`" in out

    report = project.root / "r.json"
    junit = project.root / "r.xml"
    # Docker under software emulation is 5-10 times slower: give every step three times its timeout.
    code = run_check(monkeypatch, project, "07", "--timeout-factor", "3", "--json", str(report), "--junit", str(junit))
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["target"].startswith("vagrant:default (libvirt,")
    assert data["engine"]["image_store"] == "overlay2" and data["engine"]["builder"] == "legacy"
    assert "(containerized)" not in data["engine"]["operating_system"]  # a VM with its own kernel
    assert all(c["verdict"] == "pass" for c in data["claims"]), data["claims"]
    assert [d for d in data["lab_vs_engine"] if not d["holds"]] == []
    assert junit.exists()
