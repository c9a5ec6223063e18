"""The CLI in-process (as httpie and pipx test theirs): usage and lab errors end with code 2 and one line."""

from __future__ import annotations

import shutil

import pytest

from checker.cli import main
from tests.variants import LAB07, REPO

# Whatever labs the repository has: adding one changes no test.
KNOWN = ", ".join(sorted(p.name for p in (REPO / "labs").iterdir() if (p / "lab.yaml").is_file()))


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_lab_exits_2_with_one_line(capsys):
    code, out, err = run(capsys, "99")
    assert code == 2
    assert err.strip() == f"check-lab: unknown lab '99'; known labs: {KNOWN}"


def test_malformed_lab_yaml_exits_2(capsys, tmp_path):
    folder = tmp_path / "07"
    shutil.copytree(LAB07, folder)
    (folder / "lab.yaml").write_text("schema: 1\nid: '07'\ntitle: x\nsteps: [\n")
    code, out, err = run(capsys, str(folder))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "invalid YAML" in err and f"{folder}/lab.yaml:" in err


def test_list_shows_lab_07(capsys):
    code, out, err = run(capsys, "list")
    assert code == 0
    assert "07" in out and "FS layering" in out


@pytest.mark.parametrize("args,message", [
    (["07", "--set", "containers"], "expected KEY=VALUE"),
    (["07", "--set", "colour=red"], "has no variable 'colour'"),
    (["07", "--timeout", "nope=3"], "has no step 'nope'"),
    (["07", "--timeout", "stop=soon"], "not a number"),
    (["07", "--target", "ftp://x"], "unknown target"),
    (["07", "--target", "ssh://"], "no host"),
    (["07", "--json", "/no/such/folder/r.json"], "does not exist"),
])
def test_bad_options_exit_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_argparse_usage_errors_exit_2(capsys):
    code, out, err = run(capsys, "07", "--no-such-flag")
    assert code == 2


def test_no_vagrantfile_is_a_target_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAGRANT_CWD", raising=False)
    code, out, err = run(capsys, "07")
    assert code == 3
    assert "no Vagrantfile in this folder or above" in err


def test_unreachable_ssh_target_exits_3(capsys, tmp_path):
    # A port on loopback nobody listens on: connection refused, a clear one-line answer.
    code, out, err = run(capsys, "07", "--target", "ssh://vagrant@127.0.0.1:1", "--known-hosts",
                         str(tmp_path / "kh"))
    assert code == 3
    assert "cannot reach ssh://vagrant@127.0.0.1:1" in err
