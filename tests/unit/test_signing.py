"""Reports tied to the machine and the run (the engine's ID, its host name, the grader's nonce) and signed
with the grader's key: `--sign KEY`, `check-lab verify REPORT --key KEY.pub`, `check-lab merge --key`. Keys
made by ssh-keygen, reports by replaying a recorded run of lab 07 through the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from checker import cli, targets
from checker.transcript import ReplayTransport
from tests.unit.replay import transcript

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client)")


def keygen(tmp_path: Path, name: str, kind: str = "ed25519") -> Path:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def checked(monkeypatch, scenario: str, *args: str) -> int:
    path = transcript("e1-bookworm-docker20", scenario)
    monkeypatch.setattr(targets, "open_quickly", lambda options: ReplayTransport(path))
    return cli.main(["07", "--no-color", *args])


@pytest.fixture
def signed(monkeypatch, tmp_path, capsys):
    key = keygen(tmp_path, "grader")
    report = tmp_path / "alice.json"
    assert checked(monkeypatch, "pass", "--report", f"json:{report}", "--sign", str(key), "--nonce", "lab07-alice") == 0
    capsys.readouterr()
    return key, report


def test_a_signed_report_names_the_machine_and_the_run_and_verifies(signed, capsys):
    key, report = signed
    data = json.loads(report.read_text())
    assert data["identity"] == {"engine_id": "G4KQ:5YHV:2ENA:24RB:KVGJ:MIUM:K2PB:4Z62:FCVS:S37G:UVH3:ZKMC",
                                "host": "docker-vm", "machine_id": "f62672c266584d1ca1a846fa262d9817",
                                "nonce": "lab07-alice", "student": None}
    assert data["signature"]["algorithm"] == "ed25519"
    assert data["signature"]["public_key"].split()[:2] == Path(f"{key}.pub").read_text().split()[:2]
    assert cli.main(["verify", str(report), "--key", f"{key}.pub"]) == 0
    assert capsys.readouterr().out.strip() == (f"{report}: valid: signed with this key, unchanged (engine "
                                               "G4KQ:5YHV:2ENA:24RB:KVGJ:MIUM:K2PB:4Z62:FCVS:S37G:UVH3:ZKMC, "
                                               "host docker-vm, machine f62672c266584d1ca1a846fa262d9817, "
                                               "nonce lab07-alice)")


@pytest.mark.parametrize("edit", ["verdict", "score", "nonce", "engine"])
def test_an_edited_report_does_not_verify(signed, capsys, edit):
    key, report = signed
    data = json.loads(report.read_text())
    if edit == "verdict":
        data["claims"][3]["verdict"] = "fail"
    elif edit == "score":
        data["score"]["points"] = 11
    elif edit == "nonce":
        data["identity"]["nonce"] = "lab07-bob"
    else:
        data["identity"]["engine_id"] = "AAAA:BBBB"
    report.write_text(json.dumps(data, indent=2))
    assert cli.main(["verify", str(report), "--key", f"{key}.pub"]) == 1
    assert capsys.readouterr().out.strip() == (f"{report}: NOT VALID: the report was changed after it was signed "
                                               "(its signature does not match its content)")


def test_a_report_signed_with_another_key_or_not_at_all(signed, monkeypatch, tmp_path, capsys):
    key, report = signed
    other = keygen(tmp_path, "someone")
    unsigned = tmp_path / "bob.json"
    assert checked(monkeypatch, "pass", "--report", f"json:{unsigned}") == 0
    capsys.readouterr()
    assert cli.main(["verify", str(report), str(unsigned), "--key", f"{other}.pub"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{report}: NOT VALID: the report is signed with another key than this one",
                   f"{unsigned}: NOT VALID: the report is not signed"]


def test_merge_takes_only_reports_signed_with_the_graders_key(signed, monkeypatch, tmp_path, capsys):
    key, report = signed
    bob = tmp_path / "bob.json"
    assert checked(monkeypatch, "extra-run-layer", "--report", f"json:{bob}", "--sign", str(key)) == 1
    roster = tmp_path / "roster.json"
    capsys.readouterr()
    assert cli.main(["merge", str(report), str(bob), "--key", f"{key}.pub", "--report", f"roster:{roster}"]) == 1
    assert [s["student"] for s in json.loads(roster.read_text())["students"]] == ["alice", "bob"]
    data = json.loads(bob.read_text())
    data["claims"][3]["verdict"] = "pass"  # bob makes his failed claim pass
    bob.write_text(json.dumps(data))
    roster.unlink()
    capsys.readouterr()
    assert cli.main(["merge", str(report), str(bob), "--key", f"{key}.pub", "--report", f"roster:{roster}"]) == 2
    assert capsys.readouterr().err.strip() == (f"check-lab: merge: {bob}: the report was changed after it was "
                                               "signed (its signature does not match its content)")
    assert not roster.exists()


def test_what_cannot_sign_is_refused_before_anything_runs(monkeypatch, tmp_path, capsys):
    rsa = keygen(tmp_path, "old", "rsa")
    protected = tmp_path / "protected"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(protected)], check=True)
    report = tmp_path / "r.json"
    cases = [(["--report", f"json:{report}", "--sign", str(rsa)], "is not an Ed25519 key"),
             (["--report", f"json:{report}", "--sign", str(protected)], "is protected by a passphrase"),
             (["--report", f"json:{report}", "--sign", str(tmp_path / "none")], "cannot read the key"),
             (["--report", f"junit:{report}", "--sign", str(protected)], "--sign signs JSON reports"),
             (["--report", f"json:{report}", "--nonce", " "], "--nonce: give a value")]
    for args, message in cases:
        assert checked(monkeypatch, "pass", *args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not report.exists()


def test_a_signed_report_follows_the_reports_schema(signed):
    import jsonschema

    _key, report = signed
    schema = json.loads((Path(cli.__file__).resolve().parent / "schemas" / "report.schema.json").read_text())
    data = json.loads(report.read_text())
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "signature": {**data["signature"], "algorithm": "md5"}}, schema)


def test_a_machine_is_checked_as_one_students_only(monkeypatch, tmp_path, capsys):
    """--student ID: the recorded machine's engine names no student (it was provisioned without LAB_STUDENT):
    refused before anything runs, with what to do; a malformed ID, or one ID for a class, is a usage error."""
    report = tmp_path / "r.json"
    assert checked(monkeypatch, "pass", "--student", "alice", "--report", f"json:{report}") == 3
    err = capsys.readouterr().err
    assert "names no student (no label check-lab.student)" in err and "lab-env provision --student alice" in err
    assert not report.exists()
    assert checked(monkeypatch, "pass", "--student", "alice; rm") == 2
    assert "a student's ID is letters, digits" in capsys.readouterr().err
    listing = tmp_path / "class.txt"
    listing.write_text("local\n")
    assert cli.main(["07", "--targets", str(listing), "--student", "alice"]) == 2
    assert "--student names one student's machine" in capsys.readouterr().err
