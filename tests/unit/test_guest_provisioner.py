"""The guest provisioner's pure parts: options from the environment, daemon.json merging."""

from __future__ import annotations

import pytest

from provision import guest


def test_options_from_environment():
    opts = guest.Options.from_env({"LAB_REGISTRY_MIRROR": "http://a:5000, http://b:5000",
                                   "LAB_INSECURE_REGISTRY": "a:5000", "LAB_BUILDER": "buildkit"})
    assert opts.registry_mirror == ["http://a:5000", "http://b:5000"]
    assert opts.insecure_registry == ["a:5000"]
    assert opts.storage_driver == "overlay2" and opts.user == "vagrant" and opts.image_store == "overlay2"
    assert opts.builder == "buildkit" and opts.docker_source == "distro"
    assert opts.compose == "yes"  # the course's docker-compose, installed when missing


@pytest.mark.parametrize("var,value", [("LAB_IMAGE_STORE", "zfs"), ("LAB_BUILDER", "kaniko"),
                                       ("LAB_DOCKER_SOURCE", "snap"), ("LAB_DOCKER_SOURCE", "distro=latest"),
                                       ("LAB_DOCKER_SOURCE", "docker=28.5.2; reboot"), ("LAB_COMPOSE", "maybe")])
def test_bad_choices_are_refused(var, value):
    with pytest.raises(guest.StepFailed, match=var):
        guest.Options.from_env({var: value})


def test_daemon_json_keeps_keys_we_do_not_manage():
    opts = guest.Options.from_env({"LAB_REGISTRY_MIRROR": "http://m:5000"})
    current = {"log-driver": "json-file", "insecure-registries": ["old:5000"], "features": {"other": True}}
    desired = guest.desired_daemon_config(opts, current)
    assert desired == {"log-driver": "json-file", "storage-driver": "overlay2",
                       "registry-mirrors": ["http://m:5000"],
                       "features": {"other": True, "containerd-snapshotter": False}}
    assert guest.desired_daemon_config(opts, desired) == desired  # a second run changes nothing


def test_the_engine_is_labelled_for_its_student():
    current = {"labels": ["room=B12", "check-lab.student=alice"]}
    bob = guest.desired_daemon_config(guest.Options.from_env({"LAB_STUDENT": "bob"}), current)
    assert bob["labels"] == ["room=B12", "check-lab.student=bob"]  # others' labels kept, one student
    assert guest.desired_daemon_config(guest.Options.from_env({"LAB_STUDENT": "bob"}), bob) == bob
    nobody = guest.desired_daemon_config(guest.Options.from_env({}), {"labels": ["check-lab.student=alice"]})
    assert "labels" not in nobody
    with pytest.raises(guest.StepFailed, match="a student's ID is letters, digits"):
        guest.step_daemon_config(guest.Options.from_env({"LAB_STUDENT": "alice; rm -rf /"}), {})


def test_containerd_store_and_builder_in_daemon_json():
    opts = guest.Options.from_env({"LAB_IMAGE_STORE": "containerd", "LAB_BUILDER": "legacy"})
    desired = guest.desired_daemon_config(opts, {"storage-driver": "overlay2"})
    assert "storage-driver" not in desired
    assert desired["features"] == {"containerd-snapshotter": True, "buildkit": False}


def test_docker_repository_packages():
    assert guest.docker_packages("docker", "") == ["docker-ce", "docker-ce-cli", "containerd.io",
                                                   "docker-buildx-plugin"]


def test_versions():
    assert guest.version_tuple("Docker version 20.10.24+dfsg1, build 5d6db84") == (20, 10, 24)
    assert guest.version_tuple("Docker version 26.1.5+dfsg1") >= (24,)


def test_hosts_names_the_course_machines_in_place_once(tmp_path, monkeypatch):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n172.29.107.3\tswarmnode1\n")
    inode = hosts.stat().st_ino
    monkeypatch.setattr(guest, "HOSTS_FILE", str(hosts))
    opts = guest.Options(hosts=["192.168.135.100=swarmmanager", "192.168.135.101=swarmnode1"])
    assert guest.step_hosts(opts)[0] == "changed"
    text = hosts.read_text()
    assert "192.168.135.100\tswarmmanager\n192.168.135.101\tswarmnode1\n" in text
    assert text.startswith("127.0.0.1\tlocalhost\n172.29.107.3\tswarmnode1\n")  # theirs kept
    assert hosts.stat().st_ino == inode  # written in place: a container's /etc/hosts is a bind mount
    assert guest.step_hosts(opts)[0] == "unchanged"
    opts2 = guest.Options(hosts=["10.0.0.100=swarmmanager"])
    assert guest.step_hosts(opts2)[0] == "changed"
    assert "192.168.135" not in hosts.read_text() and hosts.read_text().count(guest.HOSTS_BEGIN) == 1
    assert guest.step_hosts(guest.Options())[0] == "unchanged"
    with pytest.raises(guest.StepFailed, match="not ADDRESS=NAME"):
        guest.step_hosts(guest.Options(hosts=["swarmmanager"]))


def test_machine_id_made_once_where_there_is_none_and_never_changed(tmp_path, monkeypatch):
    path = tmp_path / "machine-id"
    monkeypatch.setattr(guest, "MACHINE_ID_FILE", str(path))
    status, detail = guest.step_machine_id(guest.Options())
    made = path.read_text()
    assert status == "changed" and len(made.strip()) == 32 and made.endswith("\n")
    assert guest.step_machine_id(guest.Options())[0] == "unchanged" and path.read_text() == made
    path.write_text("")  # an image's empty placeholder
    assert guest.step_machine_id(guest.Options())[0] == "changed"
    path.write_text("not-an-id\n")
    with pytest.raises(guest.StepFailed, match="not a machine ID"):
        guest.step_machine_id(guest.Options())
    assert path.read_text() == "not-an-id\n"  # theirs, left as it was


def test_a_docker_source_with_a_version_pin():
    opts = guest.Options.from_env({"LAB_DOCKER_SOURCE": "docker=28.5.2"})
    assert (opts.engine_source, opts.engine_pin) == ("docker", "28.5.2")
    assert (guest.Options.from_env({}).engine_source, guest.Options.from_env({}).engine_pin) == ("distro", "")


@pytest.mark.parametrize("version,pin,matches", [
    ("20.10.24+dfsg1-1+deb12u1", "20.10", True),
    ("20.10.24+dfsg1-1+deb12u1", "20", True),
    ("5:28.5.2-1~debian.12~bookworm", "28.5.2", True),   # Docker's epoch aside
    ("5:28.5.2-1~debian.12~bookworm", "28.5", True),
    ("28.50.1+dfsg1-1", "28.5", False),                  # 28.5 is not 28.50
    ("26.1.5+dfsg1-9+b9", "28.5", False),
    ("5:28.5.20-1~debian.12~bookworm", "28.5.2", False),
])
def test_which_package_versions_a_pin_matches(version, pin, matches):
    assert guest.pin_matches(version, pin) is matches


MADISON = """ docker.io | 28.5.2+dfsg3-1 | http://mirror/debian sid/main amd64 Packages
 docker.io | 26.1.5+dfsg1-9+b9 | http://mirror/debian trixie/main amd64 Packages
 docker.io | 20.10.24+dfsg1-1+deb12u1 | http://mirror/debian bookworm/main amd64 Packages
 docker.io | 20.10.24+dfsg1-1+deb12u1 | http://mirror/debian bookworm/main Sources
"""


def test_a_pinned_release_is_the_newest_of_its_versions_or_a_one_line_refusal(monkeypatch):
    import subprocess

    monkeypatch.setattr(guest, "sh", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, MADISON, ""))
    assert guest.available_versions("docker.io") == ["28.5.2+dfsg3-1", "26.1.5+dfsg1-9+b9", "20.10.24+dfsg1-1+deb12u1"]
    assert guest.pinned_version(guest.Options(docker_source="distro=26"), "docker.io") == "26.1.5+dfsg1-9+b9"
    with pytest.raises(guest.StepFailed) as refused:
        guest.pinned_version(guest.Options(docker_source="distro=19.03"), "docker.io")
    assert str(refused.value) == ("LAB_DOCKER_SOURCE=distro=19.03: the apt sources have no docker.io 19.03 (they have: "
                                  "28.5.2+dfsg3-1, 26.1.5+dfsg1-9+b9, 20.10.24+dfsg1-1+deb12u1); nothing changed")


def test_docker_repository_is_a_setting(monkeypatch):
    monkeypatch.setattr(guest, "os_release", lambda: {"ID": "ubuntu", "VERSION_CODENAME": "noble"})
    with pytest.raises(guest.StepFailed, match="needs LAB_DOCKER_REPOSITORY"):
        guest.add_docker_repository("")
    # The provisioner names no repository host of its own.
    assert "docker.com" not in open(guest.__file__).read()


def test_engine_answers_only_with_a_server(monkeypatch):
    import subprocess

    # Docker 26 and 28 clients print `docker info --format` with exit 0 and nothing when no daemon answers.
    monkeypatch.setattr(guest, "sh", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "\n", ""))
    assert not guest.engine_answers()
    monkeypatch.setattr(guest, "sh", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "4f1c:AB12\n", ""))
    assert guest.engine_answers()
    no_server = '{"ServerVersion": "", "Driver": "", "ServerErrors": ["Cannot connect to the Docker daemon"]}'
    monkeypatch.setattr(guest, "sh", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, no_server, ""))
    with pytest.raises(guest.StepFailed, match="no answer from the daemon .Cannot connect"):
        guest.step_verify(guest.Options())


def test_the_courses_tools_beyond_docker_are_installed_once(monkeypatch):
    """curl, which the labs' commands use on the machine: a minimal box (the test's libvirt box) lacks it."""
    on_path: set[str] = set()
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(guest.shutil, "which", lambda name: f"/usr/bin/{name}" if name in on_path else None)

    def apt(*args, **kw):
        calls.append(args)
        if args[0] == "install":
            on_path.update(a for a in args if not a.startswith("-") and a != "install")
    monkeypatch.setattr(guest, "apt", apt)
    opts = guest.Options.from_env({})
    with pytest.raises(guest.StepFailed, match="curl missing, and no apt-get"):
        guest.step_tools_installed(opts)
    on_path.add("apt-get")
    assert guest.step_tools_installed(opts) == ("changed", "installed curl")
    assert calls == [("update",), ("install", "--no-install-recommends", "curl")]
    assert guest.step_tools_installed(opts) == ("unchanged", "curl installed")
    assert len(calls) == 2


# ------------------------------------------------------------------------------------------- LAB_ENGINE=podman


def test_podman_is_an_engine_choice_and_refuses_dockers_own_settings():
    assert guest.Options.from_env({"LAB_ENGINE": "podman"}).engine == "podman"
    assert guest.Options.from_env({}).engine == "docker"
    for var, value in (("LAB_ENGINE", "containerd"),):
        with pytest.raises(guest.StepFailed, match=var):
            guest.Options.from_env({var: value})
    for var, value in (("LAB_IMAGE_STORE", "containerd"), ("LAB_BUILDER", "buildkit"),
                       ("LAB_DOCKER_SOURCE", "docker"), ("LAB_STUDENT", "alice")):
        with pytest.raises(guest.StepFailed, match=f"LAB_ENGINE=podman: {var}="):
            guest.Options.from_env({"LAB_ENGINE": "podman", var: value})


def test_podmans_registries_name_the_mirror_as_dockers_daemon_json_would():
    opts = guest.Options.from_env({"LAB_ENGINE": "podman", "LAB_REGISTRY_MIRROR": "http://10.0.0.1:5000/",
                                   "LAB_INSECURE_REGISTRY": "10.0.0.1:5000,reg.lan:5001"})
    text = guest.podman_registries(opts)
    assert 'unqualified-search-registries = ["docker.io"]' in text  # `ubuntu:18.04` is Docker Hub's, as on Docker
    assert '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n[[registry.mirror]]\n' \
           'location = "10.0.0.1:5000"\ninsecure = true' in text
    assert '[[registry]]\nlocation = "reg.lan:5001"\ninsecure = true' in text
    assert text.count("[[registry]]") == 2
    https = guest.podman_registries(guest.Options.from_env({"LAB_ENGINE": "podman",
                                                            "LAB_REGISTRY_MIRROR": "https://m.lan"}))
    assert 'location = "m.lan"\ninsecure = false' in https
    assert "[[registry" not in guest.podman_registries(guest.Options.from_env({"LAB_ENGINE": "podman"}))


def test_podman_resolves_the_short_names_its_distribution_aliases_elsewhere_on_docker_hub(tmp_path):
    """Debian's shortnames.conf sends hello-world to Podman's own hello image: lab 01 would meet another image."""
    shortnames = tmp_path / "shortnames.conf"
    shortnames.write_text('[aliases]\n  # Podman\n  "hello-world" = "quay.example/podman/hello"\n'
                          '  "busybox" = "docker.io/library/busybox"\n  "opensuse/leap" = "reg.example/opensuse/leap"\n'
                          '[other]\n  "not-an-alias" = "elsewhere/x"\n')
    aliases = guest.foreign_aliases([str(shortnames), str(tmp_path / "absent.conf")])
    assert aliases == ["hello-world", "opensuse/leap"]
    text = guest.podman_registries(guest.Options.from_env({"LAB_ENGINE": "podman"}), aliases)
    assert text.endswith('[aliases]\n"hello-world" = "docker.io/library/hello-world"\n'
                         '"opensuse/leap" = "docker.io/opensuse/leap"\n')
    assert guest.PODMAN_REGISTRIES > "/etc/containers/registries.conf.d/shortnames.conf"  # read after it


def test_podman_gives_the_user_subordinate_ids_after_everyone_elses(tmp_path, monkeypatch):
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("alice:100000:65536\n")
    subgid.write_text("vagrant:100000:65536\n")
    tun = tmp_path / "tun"
    tun.write_text("")
    monkeypatch.setattr(guest, "SUBID_FILES", (str(subuid), str(subgid)))
    monkeypatch.setattr(guest, "TUN", str(tun))
    calls = []
    monkeypatch.setattr(guest, "sh", lambda argv, **kw: calls.append(argv) or guest.subprocess.CompletedProcess(
        argv, 0, "", ""))
    monkeypatch.setattr(guest.pwd, "getpwnam", lambda name: type("P", (), {"pw_uid": 1000})())
    opts = guest.Options.from_env({"LAB_ENGINE": "podman"})
    status, detail = guest.step_user_namespaces(opts)
    assert status == "changed" and calls[0] == ["usermod", "--add-subuids", "165536-231071", "vagrant"]
    assert len(calls) == 2 and calls[1][-1] == "podman system migrate"  # subgid had vagrant already
    subuid.write_text("alice:100000:65536\nvagrant:165536:65536\n")
    calls.clear()
    assert guest.step_user_namespaces(opts)[0] == "unchanged" and not calls
    tun.unlink()
    with pytest.raises(guest.StepFailed, match="no .*tun: rootless containers would have no network"):
        guest.step_user_namespaces(opts)


def test_podman_is_never_installed_over_dockers_engine(monkeypatch):
    monkeypatch.setattr(guest.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(guest.StepFailed, match="has Docker's engine .dockerd.*left as it is"):
        guest.step_podman_installed(guest.Options.from_env({"LAB_ENGINE": "podman"}), {})
