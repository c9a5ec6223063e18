"""The table of targets: one scheme per kind of target, the same table for --target, a targets file and
the help text; specs checked before anything is contacted."""

from __future__ import annotations

import pytest

from checker import targets
from checker.errors import UsageError
from checker.targets import docker, vagrant


def test_the_table_names_each_kind_of_target_once():
    assert set(targets.BACKENDS) == {"vagrant", "ssh", "docker", "local"}
    help_text = targets.help_text()
    for backend in targets.BACKENDS.values():
        assert backend.forms in help_text
    for spec, scheme in (("vagrant", "vagrant"), ("vagrant:web", "vagrant"), ("ssh://a@b:22", "ssh"),
                         ("docker://vm1", "docker"), ("local", "local")):
        assert targets.backend_for(spec).scheme == scheme


@pytest.mark.parametrize("spec,message", [
    ("ftp://x", "unknown target 'ftp://x'"),
    ("localhost", "unknown target"),
    ("docker://", "use docker://CONTAINER"),
    ("docker://a b", "use docker://CONTAINER"),
    ("ssh://", "no host"),
    ("ssh://u:secret@h", "passwords do not belong"),
])
def test_bad_specs(spec, message):
    with pytest.raises(UsageError, match=message):
        targets.validate(spec)


def test_spec_forms():
    assert docker.parse("docker://vagrant@lab-vm") == ("vagrant", "lab-vm")
    assert docker.parse("docker://3f2a9c") == (None, "3f2a9c")
    assert vagrant.parse("vagrant") == (None, None)
    assert vagrant.parse("vagrant:web") == (None, "web")
    folder, name = vagrant.parse("vagrant:/home/t/vms/bob#web")
    assert str(folder) == "/home/t/vms/bob" and name == "web"


def test_help_imports_no_backend():
    import subprocess
    import sys

    code = ("import sys, checker.cli; checker.cli.build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.startswith(('checker.targets.', 'paramiko', 'yaml', 'rich'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("spec,message", [
    ("vagrant:swarmmanager", "not on one machine"),
    ("ssh://vagrant@10.0.0.5", "give the Vagrant folder"),
    ("swarmmanager=ssh://v@a,swarmnode1=ssh://v@b", "give NAME=TARGET for each"),
    ("swarmmanager=ssh://v@a,swarmnode1=ssh://v@b,swarmnode2", "each machine is NAME=TARGET"),
    ("swarmmanager=ssh://v@a,swarmnode1=ssh://v@b,swarmnode2=ftp://c", "unknown target 'ftp://c'"),
])
def test_a_lab_of_several_machines_takes_a_folder_or_one_target_per_machine(spec, message):
    opts = targets.TargetOptions(spec)
    with pytest.raises(UsageError, match=message):
        targets.open_machines(opts, ("swarmmanager", "swarmnode1", "swarmnode2"))
