"""The claims' Podman forms and what an engine lacks (engine E6: Podman through podman-docker), each with its
negative: the words and fields are Podman's as recorded from E6 (sid's Podman 5.8, rootless); the Docker
forms beside them are unchanged."""

from __future__ import annotations

import pytest

from checker.claims.environment import pulled_when_missing
from checker.claims.network import ping_shows
from checker.facts import Container, Facts, HistoryRow, Image, NotApplicable
from checker.probes import PROBES
from checker.records import Engine, Result, StepFact

PODMAN = Engine("5.8.6", "overlay", "/home/vagrant/.local/share/containers/storage", cgroup_version="1",
                product="podman", rootless=True)
DOCKER = Engine("28.5.2", "overlay2", "/var/lib/docker", cgroup_version="2")


def step(step_id: str, stdout: str = "", stderr: str = "", code: int = 0) -> StepFact:
    return StepFact(step_id, step_id, "docker …", "passed", Result(code, stdout, stderr, 0.1))


# ------------------------------------------------------------------------------------------------ ping

DENIED = "PING 8.8.8.8 (8.8.8.8): 56 data bytes\n", "ping: permission denied (are you root?)\n"


def test_a_ping_that_cannot_open_its_socket_shows_nothing_of_the_network():
    with pytest.raises(NotApplicable, match=r"cannot open its ICMP socket .*permission denied \(are you root\?\)"):
        ping_shows(Facts(engine=PODMAN), step("ping", *DENIED, code=1), "Network is unreachable")
    # --cap-add NET_RAW on the same engine: it asks the network, and the none network has no route
    held = ping_shows(Facts(engine=PODMAN), step("ping", DENIED[0], "ping: sendto: Network is unreachable\n", 1),
                      "Network is unreachable")
    assert held.ok
    # the negative: the container on the bridge, where nothing answers (lab 08's 08-on-the-bridge)
    lost = ping_shows(Facts(engine=DOCKER), step("ping", "1 packets transmitted, 0 packets received, 100% packet "
                                                         "loss\n", code=1), "Network is unreachable")
    assert not lost.ok and "100% packet loss" in lost.observed


# ------------------------------------------------------------------------------------------------ pulls

PODMAN_PULL = ('Resolving "hello-world" using unqualified-search registries (/etc/containers/registries.conf.d/'
               'zz-check-lab.conf)\nTrying to pull docker.io/library/hello-world:latest...\nGetting image source '
               'signatures\nCopying blob sha256:2db29710123e5455b34e722505b562504b39e55355e344405489c2d5e5b07d3e\n'
               'Copying config sha256:d2c94e258dcb3c5ac2798d32e1249e42ef01cba4841c2234249495f87264ac5a\n'
               'Writing manifest to image destination\n')
HELLO = Image("sha256:d2c94e258dcb", ("hello-world:latest",), ("sha256:2db2",), 13256, "overlay", {}, ("/hello",), "",
              digests=("docker.io/library/hello-world@sha256:aa",))


def test_podman_says_it_pulls_a_missing_image_in_its_own_words():
    run = step("run", "Hello from Docker!\n", PODMAN_PULL)
    assert pulled_when_missing(Facts(engine=PODMAN), run, HELLO, "hello-world").ok
    # the negative: the image was found locally (no pull at all), though the engine did not have it before
    quiet = step("run", "Hello from Docker!\n", "")
    verdict = pulled_when_missing(Facts(engine=PODMAN), quiet, HELLO, "hello-world")
    assert not verdict.ok and "did not try to pull hello-world" in verdict.observed
    # Docker's words are not Podman's: the Podman form is read on Podman only
    assert not pulled_when_missing(Facts(engine=DOCKER), run, HELLO, "hello-world").ok


# ------------------------------------------------------------------------------------------------ records

def test_podman_lists_every_tmpfs_apart_from_the_mounts_as_docker_lists_its_tmpfs_option():
    data = {"Id": "c1", "Mounts": [], "HostConfig": {"Tmpfs": {"/var/log/nginx": "rprivate,nosuid,nodev,tmpcopyup"}}}
    assert Container.from_inspect(data).mounts == (
        {"type": "tmpfs", "source": "", "destination": "/var/log/nginx", "rw": True},)
    # Docker's --mount type=tmpfs is in Mounts (listed once); no tmpfs at all: none
    docker = {"Id": "c2", "Mounts": [{"Type": "tmpfs", "Destination": "/x", "RW": True}],
              "HostConfig": {"Tmpfs": {"/x": ""}}}
    assert len(Container.from_inspect(docker).mounts) == 1
    assert Container.from_inspect({"Id": "c3", "HostConfig": {}}).mounts == ()


def test_podmans_history_rows_and_events_are_read_in_its_own_keys():
    row = HistoryRow.from_json({"id": "dcc127ddf40d", "created": "2026-11-29T03:31:12Z", "CreatedBy": "CMD", "size": 138752})
    assert (row.id, row.size, row.created_at) == ("dcc127ddf40d", 138752, "2026-11-29T03:31:12Z")
    lines = "\n".join([
        '{"ID":"7a10","Image":"localhost/my-image:1.0","Name":"my_container_1","Status":"start","time":1,'
        '"timeNano":1000000000,"Type":"container"}',
        '{"ID":"7a10","Image":"localhost/my-image:1.0","Name":"my_container_1","Status":"died","time":2,'
        '"timeNano":2000000000,"Type":"container","ContainerExitCode":137}',
        '{"ID":"7a10","Image":"localhost/my-image:1.0","Name":"my_container_1","Status":"remove","time":2,'
        '"timeNano":2100000000,"Type":"container"}',
        '{"ID":"9b20","Image":"busybox","Name":"someone_else","Status":"died","time":2,"Type":"container"}'])
    log = PROBES["container_events"].parse(Result(0, lines + "\n", "", 0.1),
                                           {"names": "my_container_1", "since": "0"})
    assert log.died("my_container_1").exit_code == 137 and log.destroyed("my_container_1")
    assert not log.running("my_container_1") and log.of("someone_else") == []
    # Podman's `events --until` finds nothing: it reads what is stored and ends (--stream=false)
    podman_cmd = " ".join(PROBES["container_events"].build({"names": "x", "since": "5"}, PODMAN)[0])
    docker_cmd = " ".join(PROBES["container_events"].build({"names": "x", "since": "5"}, DOCKER)[0])
    assert "--stream=false" in podman_cmd and "--until" not in podman_cmd and "--until" in docker_cmd


@pytest.mark.parametrize("feature", ["default-bridge", "docker-data-root", "empty-tmpfs", "container-address",
                                     "compose", "docker-socket", "resource-limits"])
def test_what_podman_lacks_is_said_and_docker_lacks_none_of_it(feature):
    assert PODMAN.lacks(feature) and not DOCKER.lacks(feature)
    assert PODMAN.lacking(("not-a-feature", feature)) == PODMAN.lacks(feature)


# ------------------------------------------------------------------------------------------------ root's shell


def test_containers_left_running_in_rootless_podman_get_a_hint_about_roots_own_store():
    """The course's `sudo su` before its stop: under Docker root reaches the same engine; rootless Podman gives
    root a store of its own (on E6 root's `docker stop $(docker ps -q)` said: you must provide at least one name
    or id), so the hint says where to stop them."""
    from checker.claims.layering import containers_stopped

    def running(name: str) -> Container:
        return Container(name, name, "sha256:aa", "localhost/my-image:1.0", True, "running", None, None, None, "",
                         "2026-11-29T21:31:17Z")

    names = ["my_container_1", "my_container_2"]
    left = [running(n) for n in names]
    on_podman = containers_stopped(Facts(engine=PODMAN), left, names, "events", "image")
    assert not on_podman.ok and "type `exit` first" in on_podman.hint
    on_docker = containers_stopped(Facts(engine=DOCKER), left, names, "events", "image")
    assert not on_docker.ok and on_docker.hint == "stop them by name: docker stop my_container_1 my_container_2"


def test_a_container_podman_is_still_stopping_still_runs():
    """Podman's inspect while `docker stop` waits for the container's end (bash as PID 1 ignores SIGTERM, so
    10 seconds): Running false, Status "stopping"; its processes still run, so it is not stopped yet."""
    def inspect(status: str, running: bool) -> dict:
        return {"Id": "4f1c", "Name": "my_container_1", "Image": "sha256:aa", "Config": {"Image": "my-image:1.0"},
                "State": {"Status": status, "Running": running, "ExitCode": 0,
                          "StartedAt": "2026-11-29T21:45:02.1Z"}}

    assert Container.from_inspect(inspect("stopping", False)).running
    assert not Container.from_inspect(inspect("exited", False)).running
    assert Container.from_inspect(inspect("running", True)).running
