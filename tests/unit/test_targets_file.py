"""`--targets FILE`: a list of targets, or an OpenSSH config file's hosts."""

from __future__ import annotations

import pytest

from checker.errors import UsageError
from checker.exitcodes import for_targets
from checker.targets import TargetOptions
from checker.targets.file import load_targets
from checker.targets.ssh import SSHTransport

OPTS = TargetOptions(known_hosts="/tmp/kh", connect_timeout=3)


def test_a_list_with_labels_comments_and_identities(tmp_path):
    (tmp_path / "key").write_text("not a real key")
    path = tmp_path / "class.txt"
    path.write_text("# the class\n"
                    f"alice = ssh://vagrant@10.0.0.11:22 identity={tmp_path / 'key'}   # front row\n"
                    "bob=vagrant:/home/teacher/vms/bob#web\n"
                    "\n"
                    "ssh://student@10.0.0.13:2222\n")
    entries = load_targets(path, OPTS)
    assert [(e.label, e.spec) for e in entries] == [
        ("alice", "ssh://vagrant@10.0.0.11:22"), ("bob", "vagrant:/home/teacher/vms/bob#web"),
        ("ssh://student@10.0.0.13:2222", "ssh://student@10.0.0.13:2222")]
    alice = entries[0].open()
    assert isinstance(alice, SSHTransport) and alice.settings.key_files == (str(tmp_path / "key"),)
    assert alice.settings.host_keys == "strict" and alice.settings.known_hosts == "/tmp/kh"


def test_a_set_of_machines_for_a_lab_over_several(tmp_path):
    path = tmp_path / "class.txt"
    path.write_text("alice = vagrant:/home/teacher/vms/alice\n"
                    "bob = swarmmanager=ssh://vagrant@10.0.1.10,swarmnode1=ssh://vagrant@10.0.1.11,"
                    "swarmnode2=ssh://vagrant@10.0.1.12\n")
    alice, bob = load_targets(path, OPTS)
    assert bob.label == "bob" and bob.spec.startswith("swarmmanager=ssh://")
    with pytest.raises(UsageError, match="the lab runs on swarmmanager, swarmnode1: give NAME=TARGET for each"):
        bob.open_machines(("swarmmanager", "swarmnode1"))  # named machines the lab does not have: said, not opened
    with pytest.raises(UsageError, match="unknown target"):
        bob.open()  # a set is no single machine


def test_an_openssh_config_file(tmp_path):
    path = tmp_path / "ssh_config"
    path.write_text("Host *\n  ServerAliveInterval 10\n"
                    "Host alice\n  HostName 10.0.0.11\n  User vagrant\n  Port 2222\n  IdentityFile /keys/alice\n"
                    "Host bob\n  HostName 10.0.0.12\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")
    entries = load_targets(path, OPTS)
    assert [e.label for e in entries] == ["alice", "bob"]
    alice, bob = (e.open() for e in entries)
    assert (alice.settings.host, alice.settings.port, alice.settings.user) == ("10.0.0.11", 2222, "vagrant")
    assert alice.settings.key_files == ("/keys/alice",) and alice.settings.host_keys == "strict"
    assert bob.settings.host_keys == "vagrant"  # the file itself says not to check (as vagrant ssh-config does)


@pytest.mark.parametrize("text,message", [
    ("", "no targets in it"),
    ("alice = ftp://x\n", "'ftp://x' is not a target"),
    ("alice = ssh://a@b:22 colour=red\n", "unexpected 'colour=red'"),
    ("alice = ssh://a@b:22\nalice = ssh://c@d:22\n", "the label 'alice' is used twice"),
    ("swarmmanager=ssh://a@b,swarmnode1=ssh://a@c\n", "a set of machines needs a label first"),
    ("dave = swarmmanager=ssh://a@b,swarmnode1\n", "each machine is NAME=TARGET"),
    ("dave = swarmmanager=ftp://b\n", "'swarmmanager=ftp://b' is not a target"),
])
def test_bad_target_files(tmp_path, text, message):
    path = tmp_path / "t.txt"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_targets(path, OPTS)


def test_combined_exit_code():
    assert for_targets([0, 0]) == 0
    assert for_targets([0, 1]) == 1
    assert for_targets([1, 3, 0]) == 3
    assert for_targets([1, 143, 3]) == 143
