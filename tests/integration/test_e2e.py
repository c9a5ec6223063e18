"""The whole chain a student uses: `vagrant up --provider=docker`, `check-lab 07`, twice, then destroy."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.integration.conftest import run_check

pytestmark = pytest.mark.integration

CLAIMS = [
    "layers-pulled-separately", "layers-stored-in-driver-dir", "base-layers-shared", "cmd-layer-empty",
    "image-sizes-equal", "five-containers-running", "container-writable-layer-small", "container-dirs-small",
    "disk-total-formula", "containers-stopped",
]


def test_vagrant_up_then_check_lab_07_twice(project_factory, monkeypatch, capsys):
    project = project_factory("e2e")
    project.up()
    assert project.state() == "running"

    verdicts = []
    for run in (1, 2):
        report, junit = project.root / f"r{run}.json", project.root / f"r{run}.xml"
        code = run_check(monkeypatch, project, "07", "--json", str(report), "--junit", str(junit))
        out = capsys.readouterr().out
        assert code == 0, out
        assert "PASS: 10/10 claims hold" in out

        data = json.loads(report.read_text())
        assert data["schema"] == "check-lab-report" and data["version"] == 1
        assert data["result"] == "pass" and data["exit_code"] == 0
        assert [c["id"] for c in data["claims"]] == CLAIMS
        assert all(c["verdict"] == "pass" for c in data["claims"]), data["claims"]
        assert all(s["status"] == "passed" for s in data["steps"])
        assert data["engine"]["storage_driver"] == "overlay2"
        assert data["score"] == {"points": 10.0, "max": 10.0}
        by_id = {c["id"]: c for c in data["claims"]}
        # Observed values, not just verdicts: three layers pulled, 0B writable layers, tiny growth.
        assert by_id["layers-pulled-separately"]["details"]["reported"].__len__() == 3
        assert {row["size_rw"] for row in by_id["container-writable-layer-small"]["details"]["containers"]} == {0}
        growth = by_id["disk-total-formula"]["details"]["growth"]
        assert 0 <= growth < 5 * 1024 * 1024

        suites = ET.parse(junit).getroot()
        claims_suite = suites.find("testsuite")
        assert claims_suite.get("tests") == "10" and claims_suite.get("failures") == "0"
        assert claims_suite.get("errors") == "0"
        # Test cases are named after the claim's title and id.
        names = [tc.get("name") for tc in claims_suite.iter("testcase")]
        assert [n.rsplit(" (", 1)[1].rstrip(")") for n in names] == CLAIMS
        assert names == [f"{c['title']} ({c['id']})" for c in data["claims"]]
        verdicts.append([(c["id"], c["verdict"]) for c in data["claims"]])

    assert verdicts[0] == verdicts[1]

    # The check leaves nothing behind: no lab containers or images, the base image it pulled removed.
    ssh = project.ssh()
    left = ssh.run("docker ps -a --format '{{.Names}}'; docker image ls --format '{{.Repository}}:{{.Tag}}'")
    ssh.close()
    assert left.ok
    assert left.stdout.split() == []

    project.destroy()
    assert project.state() == "not_created"
