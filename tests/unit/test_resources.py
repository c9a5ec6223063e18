"""Resource kinds on answers recorded from a real engine (tests/record_resources.py), and the pure decision
of what is an interrupted run's leftover, what is someone else's, and what may be set aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.records import Result
from checker.resources import KINDS, Found, ResourceError, assess, epoch
from tests.record_resources import NAMES

RECORDED = Path(__file__).resolve().parent.parent / "transcripts" / "resources"


def engines() -> list[str]:
    return sorted(p.stem for p in RECORDED.glob("*.json"))


def answers(engine: str) -> dict[str, Result]:
    data = json.loads((RECORDED / f"{engine}.json").read_text())
    return {call["step"]: Result(**call["result"]) for call in data["calls"]}


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("key", sorted(KINDS))
def test_each_kind_finds_what_exists_and_nothing_else(engine, key):
    kind, recorded = KINDS[key], answers(engine)
    assert f"{key}:find" in recorded, f"no recorded answer for {key}: run tests/record_resources.py"
    existing, *missing = NAMES[key]
    found = kind.parse(recorded[f"{key}:find"], NAMES[key])
    assert set(found) == {existing}
    assert all(m not in found for m in missing)
    if kind.created_is_creation and key not in ("swarm",):
        assert found[existing].created is not None and found[existing].created > 1.7e9


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("key", sorted(k for k in KINDS if k != "pulls" and KINDS[k].removes))
def test_each_kind_removes_exactly_its_names_and_says_so(engine, key):
    kind, recorded = KINDS[key], answers(engine)
    removed = recorded[f"{key}:remove"]
    assert removed.ok, removed.stderr
    assert removed.stdout.split() == [NAMES[key][0]]
    assert kind.parse(recorded[f"{key}:find:after-remove"], NAMES[key]) == {}


@pytest.mark.parametrize("engine", engines())
def test_without_a_swarm_there_are_no_services_stacks_or_membership(engine):
    recorded = answers(engine)
    assert not recorded["services:find:no-swarm"].ok  # "This node is not a swarm manager"
    assert KINDS["services"].parse(recorded["services:find:no-swarm"], NAMES["services"]) == {}
    assert KINDS["stacks"].parse(recorded["stacks:find:no-swarm"], NAMES["stacks"]) == {}
    assert KINDS["swarm"].parse(recorded["swarm:find:absent"], NAMES["swarm"]) == {}


@pytest.mark.parametrize("engine", engines())
def test_a_swarm_this_machine_created_has_a_creation_time(engine):
    found = KINDS["swarm"].parse(answers(engine)["swarm:find"], ["default"])
    assert found["default"].created is not None and found["default"].id


def test_an_engine_that_does_not_answer_is_not_read_as_nothing_there():
    down = Result(1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                         "Is the docker daemon running?\n", 0.1)
    for key, kind in KINDS.items():
        with pytest.raises(ResourceError):
            kind.parse(down, NAMES[key])


@pytest.mark.parametrize("engine", engines())
def test_a_published_port_is_found_while_its_container_lives(engine):
    recorded = answers(engine)
    assert KINDS["ports"].parse(recorded["ports:find"], NAMES["ports"]) == {"4999": Found("4999")}
    assert KINDS["ports"].parse(recorded["ports:find:after-remove"], NAMES["ports"]) == {}


def test_ports_only_guard():
    ports = KINDS["ports"]
    assert not ports.removes and not ports.can_set_aside
    assert ports.check_name("4000") is None and ports.check_name("{{ port }}") is None
    assert ports.check_name("http") and ports.check_name("70000") and ports.check_name("0")
    assert ports.clash(["4000"]) == ("port 4000 of the target is in use (something listens there), and the lab "
                                     "publishes it")
    assert ports.clash(["8000", "9000"]).startswith("ports 8000, 9000 of the target are in use")
    # IPv4 and IPv6 listeners alike (/proc/net/tcp6's addresses are longer), as hexadecimal port numbers.
    listening = Result(0, "0016\n0FA0\n", "", 0.01)
    assert set(ports.parse(listening, ["4000", "4001", "22"])) == {"4000", "22"}
    with pytest.raises(ResourceError):  # no answer is not "nothing listens"
        ports.parse(Result(0, "", "", 0.01), ["4000"])


def test_which_kinds_can_be_set_aside():
    assert {k for k, kind in KINDS.items() if kind.can_set_aside} == {"images", "containers"}
    assert not KINDS["pulls"].guards
    assert KINDS["images"].backup_name("my-image:1.0") == "my-image:1.0-check-lab-saved"
    assert KINDS["images"].backup_name("registry:5000/x") == "registry:5000/x:latest-check-lab-saved"
    assert KINDS["containers"].backup_name("my_container_2") == "my_container_2-check-lab-saved"
    assert KINDS["networks"].check_name("bridge") and KINDS["networks"].check_name("lab-net") is None


def test_removal_order_lets_everything_go():
    order = sorted(KINDS.values(), key=lambda k: k.cleanup_order)
    keys = [k.key for k in order]
    # What uses a resource goes before it: services before the swarm, containers before images,
    # volumes and networks; images the lab built before the image it pulled.
    assert keys.index("stacks") < keys.index("services") < keys.index("containers")
    assert keys.index("containers") < keys.index("images") < keys.index("pulls")
    assert keys.index("containers") < keys.index("volumes") and keys.index("containers") < keys.index("networks")
    # Leaving the swarm goes after its services, before the pulled images (a worker's tasks use them).
    assert keys.index("services") < keys.index("swarm") < keys.index("pulls")


# ------------------------------------------------------------------------------------------------ assess


STARTED = epoch("2026-11-28T10:00:00Z")


def test_without_an_interrupted_run_everything_found_is_someone_elses():
    a = assess({"containers": {"my_container_2": Found("my_container_2", STARTED + 60)},
                "volumes": {"lab-data": Found("lab-data", STARTED - 60)},
                "pulls": {"ubuntu:18.04": Found("ubuntu:18.04")}}, None)
    assert [(k.key, n) for k, n in a.foreign] == [("containers", "my_container_2"), ("volumes", "lab-data")]
    assert a.leftovers == [] and a.pulls_present == {"ubuntu:18.04"} and a.stale_pulls == []
    assert [(k.key, n) for k, n in a.blocking()] == [("volumes", "lab-data")]  # volumes cannot be set aside


def test_an_interrupted_runs_leftovers_and_what_it_set_aside():
    stale = {"started": STARTED, "pulled": ["ubuntu:18.04"], "existing": {"volumes": ["old-volume"]},
             "moved": [["containers", "my_container_2", "my_container_2-check-lab-saved"],
                       ["image", "my-image:1.0", "my-image:1.0-check-lab-saved"]]}  # earlier state files: nouns
    a = assess({
        "containers": {"my_container_1": Found("my_container_1", STARTED + 5),  # made by that run
                       "my_container_3": Found("my_container_3", STARTED - 3600)},  # older than it: not its
        "volumes": {"old-volume": Found("old-volume", STARTED + 5),  # existed before that run (its state says)
                    "new-volume": Found("new-volume", STARTED + 5)},
        "images": {"my-image:1.0": Found("my-image:1.0", STARTED - 86400)},  # Created is the build time
        "swarm": {"default": Found("default", None)},  # a membership has no creation time of its own
        "pulls": {"ubuntu:18.04": Found("ubuntu:18.04")},
    }, stale)
    assert sorted((k.key, n) for k, n in a.leftovers) == [
        ("containers", "my_container_1"), ("images", "my-image:1.0"), ("swarm", "default"),
        ("volumes", "new-volume")]
    assert sorted((k.key, n) for k, n in a.foreign) == [("containers", "my_container_3"), ("volumes", "old-volume")]
    assert a.stale_pulls == ["ubuntu:18.04"]
    assert [(k.key, n, b) for k, n, b in a.restore] == [
        ("containers", "my_container_2", "my_container_2-check-lab-saved"),
        ("images", "my-image:1.0", "my-image:1.0-check-lab-saved")]
    assert a.existing["volumes"] == ["new-volume", "old-volume"]


def test_a_port_in_use_is_in_the_way_even_after_an_interrupted_run():
    """Never an interrupted run's leftover: its containers may hold it, so the runner asks again once they
    are gone (Runner._still_there)."""
    a = assess({"ports": {"4000": Found("4000")}}, {"started": STARTED, "existing": {}})
    assert [(k.key, n) for k, n in a.foreign] == [("ports", "4000")] and a.leftovers == []


def test_docker_timestamps():
    assert epoch("2026-11-28T02:20:26.704461681Z") == pytest.approx(epoch("2026-11-28T02:20:26Z") + 0.704461)
    assert epoch("2026-11-28 02:20:35.206822593 +0000 UTC") == pytest.approx(epoch("2026-11-28T02:20:35.206822Z"))
    assert epoch("2026-11-28 02:20:33 +0000 UTC") == epoch("2026-11-28T02:20:33Z")
    assert epoch("") is None and epoch("yesterday") is None


@pytest.mark.parametrize("scenario,code,tries", [("ok", 0, 1), ("fail-then-ok", 0, 2), ("fail-but-left", 0, 1),
                                                 ("always-fail", 1, 3)])
def test_leaving_the_swarm_is_typed_again_while_the_machine_is_still_in_it(tmp_path, scenario, code, tries):
    """`docker swarm leave --force` on a loaded worker can miss dockerd's own deadline: typed again (up to
    three times) while `docker info` still says the machine is in the swarm; the last error is reported.
    The script runs in a real shell; `docker` is a stand-in that answers as the scenario says."""
    import subprocess

    from checker.resources import KINDS

    fake = tmp_path / "docker"
    fake.write_text(f"""#!/bin/sh
state={tmp_path}/state; n=$(cat $state.n 2>/dev/null || echo 0)
case "$1 $2" in
  "info --format") cat $state;;
  "swarm leave") n=$((n + 1)); echo $n > $state.n
    case {scenario} in
      ok) echo inactive > $state;;
      fail-then-ok) [ $n -ge 2 ] || {{ echo "Error response from daemon: context deadline exceeded" >&2; exit 1; }}
                    echo inactive > $state;;
      fail-but-left) echo inactive > $state; echo "Error response from daemon: context deadline exceeded" >&2; exit 1;;
      always-fail) echo "Error response from daemon: context deadline exceeded" >&2; exit 1;;
    esac;;
  "network inspect") exit 1;;
esac
""")
    fake.chmod(0o755)
    (tmp_path / "state").write_text("active\n")
    script = KINDS["swarm"].remove(["lab-11"], since=0).replace("sleep 2", "sleep 0")
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert (proc.returncode, (tmp_path / "state.n").read_text().strip()) == (code, str(tries))
    assert proc.stdout == ("lab-11\n" if code == 0 else "")
    assert proc.stderr == ("" if code == 0 else "Error response from daemon: context deadline exceeded\n")
