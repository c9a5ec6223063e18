"""Observe mode's probes through the Engine API (curl on the engine's socket) against the same probes through the
`docker` command, on a real engine: the same facts from both, asked in one round trip (here on E1; on E2-E5 in
test_engines.py, whose machines are up anyway). And where the API is not used: a DOCKER_HOST that is not a Unix
socket, a docker context of the user's choosing, no curl."""

from __future__ import annotations

import dataclasses

import pytest

from checker.batch import run_batch
from checker.probes import PROBES
from tests.integration.conftest import sh

pytestmark = pytest.mark.integration

NAMES = ["api_box_1", "api_box_2", "api_box_absent"]
CASES = [
    ("image", {"ref": "ubuntu:18.04"}),
    ("image", {"ref": "not-here:1.0"}),
    ("history", {"ref": "ubuntu:18.04"}),
    ("containers", {"names": NAMES}),
    ("container_events", {"names": NAMES, "since": "0"}),
    ("engine_changes", {"since": "0"}),
    ("container_disk", {"names": NAMES}),
]
SETUP = ("docker pull -q ubuntu:18.04 >/dev/null && docker run -d --name api_box_1 ubuntu:18.04 sleep 600 >/dev/null"
         " && docker create --name api_box_2 ubuntu:18.04 true >/dev/null")
TEARDOWN = "docker rm -f api_box_1 api_box_2 >/dev/null; docker rmi ubuntu:18.04 >/dev/null"


def observed_engine(ssh):
    """The machine's engine as observe mode learns it."""
    [info] = run_batch(ssh, [PROBES["engine"].build({"api": True}, None)[0]])
    return PROBES["engine"].parse(info, {"api": True})


def both_forms(ssh, by_api, kind: str, args: dict):
    """The probe's fact through the API and through the docker command, asked in one round trip."""
    assert by_api.api_socket == "/var/run/docker.sock"
    by_cli = dataclasses.replace(by_api, api_socket=None)
    probe = PROBES[kind]
    (api_argv, api_root), (cli_argv, cli_root) = probe.build(args, by_api), probe.build(args, by_cli)
    assert "curl " in " ".join(api_argv) and "docker " not in " ".join(api_argv)  # no docker command
    wrap = lambda argv, root: ["sudo", "-n", *argv] if root else argv  # noqa: E731
    api, cli = run_batch(ssh, [wrap(api_argv, api_root), wrap(cli_argv, cli_root)])
    return probe.parse(api, args), probe.parse(cli, args)


def assert_the_forms_agree(ssh) -> None:
    """Every case of CASES on the machine behind `ssh` (its engine left as found)."""
    setup = ssh.run(SETUP, timeout=300)
    assert setup.ok, setup.stderr
    try:
        engine = observed_engine(ssh)
        for kind, args in CASES:
            api, cli = both_forms(ssh, engine, kind, args)
            assert api == cli, (engine.describe(), kind, args)
    finally:
        ssh.run(TEARDOWN, timeout=120)


@pytest.fixture(scope="module")
def engine(shared_vm):
    setup = sh(shared_vm, SETUP, timeout=300)
    assert setup.ok, setup.stderr
    ssh = shared_vm.ssh()
    try:
        yield ssh, observed_engine(ssh)
    finally:
        ssh.close()
        sh(shared_vm, TEARDOWN, timeout=120)


@pytest.mark.parametrize("kind, args", CASES)
def test_the_api_answers_what_the_docker_command_answers(engine, kind, args):
    api, cli = both_forms(*engine, kind, args)
    assert api == cli
    if kind == "containers":
        assert [c.name for c in api] == ["api_box_1", "api_box_2"]
    if kind == "container_disk":
        assert api > 0


@pytest.mark.parametrize("setting", [
    "DOCKER_HOST=tcp://127.0.0.1:2375",
    "DOCKER_CONFIG=$d",  # a docker context chosen in the user's config: the docker command may ask another engine
    "PATH=$d",  # no curl
])
def test_the_docker_command_answers_where_curl_may_not_ask_the_same_engine(engine, setting):
    ssh, _ = engine
    script = PROBES["engine"].build({"api": True}, None)[0][2].split("; echo @@check-lab-section@@; ")[-1]
    res = ssh.run("d=$(mktemp -d) && echo '{\"currentContext\": \"remote\"}' > \"$d/config.json\" && "
                  f"(export {setting}; {script}); rm -rf \"$d\"")
    assert res.ok and res.stdout == "", res
    assert ssh.run(script).stdout == "/var/run/docker.sock\n"
