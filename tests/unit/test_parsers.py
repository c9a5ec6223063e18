"""Parsers on the output of real runs (tests/transcripts), plus the size units they rely on."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from checker import parsers
from checker.units import docker_memory_bytes
from tests.unit.replay import transcript

E1 = "e1-bookworm-docker20"


def step_output(engine: str, scenario: str, needle: str) -> str:
    """The stdout of the first recorded command that contains `needle`."""
    calls = json.loads(transcript(engine, scenario).read_text())["calls"]
    for call in calls:
        if "command" in call and needle in call["command"]:
            return call["result"]["stdout"]
    raise AssertionError(f"no command with {needle!r}")


def test_pull_reports_each_layer():
    out = parsers.parse_pull(step_output(E1, "pass", "docker pull "))
    assert out.tag == "18.04"
    assert len(out.order) == 3 and all(re.fullmatch(r"[0-9a-f]{12}", lid) for lid in out.order)
    assert out.with_status("Pull complete") == out.order
    assert out.status == "Downloaded newer image for ubuntu:18.04"
    assert out.digest.startswith("sha256:")


def test_pull_of_an_image_already_there():
    text = "18.04: Pulling from library/ubuntu\nDigest: sha256:abc\nStatus: Image is up to date for ubuntu:18.04\n"
    out = parsers.parse_pull(text)
    assert out.order == [] and out.status.startswith("Image is up to date")


def test_pull_with_progress_bars_keeps_the_last_status():
    text = "7bbecadea345: Downloading [=>   ]  1MB/30MB\r7bbecadea345: Pull complete\n"
    assert parsers.parse_pull(text).layers == {"7bbecadea345": "Pull complete"}


def test_legacy_build_output():
    out = parsers.parse_build(step_output(E1, "pass", '"$LAB_DIR"/Dockerfile-my-image'))
    assert out.builder == "legacy"
    assert [(n, total) for n, total, _ in out.steps] == [(1, 2), (2, 2)]
    assert out.steps[1][2] == "CMD /app/hello.sh"
    assert out.image_id and len(out.image_id) == 12
    assert out.tags == ["my-image:1.0"]


def test_image_ls_table():
    rows = parsers.parse_table(step_output(E1, "pass", "docker image ls"))
    by_repo = {r["REPOSITORY"]: r for r in rows}
    assert set(by_repo) >= {"my-image", "my-base-image", "ubuntu"}
    assert by_repo["my-image"]["TAG"] == "1.0"
    assert by_repo["my-image"]["SIZE"] == by_repo["my-base-image"]["SIZE"] == "72.3MB"
    assert len(by_repo["ubuntu"]["IMAGE ID"]) == 12


def test_history_table():
    rows = parsers.parse_table(step_output(E1, "pass", "docker history my-image:1.0"))
    assert list(rows[0]) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert "CMD" in rows[0]["CREATED BY"] and rows[0]["SIZE"] == "0B"
    assert rows[-1]["IMAGE"] == "<missing>"
    assert parsers.docker_size(rows[-1]["SIZE"]) == 72.3e6


def test_ps_size_table():
    rows = parsers.parse_table(step_output(E1, "pass", "docker ps -s"))
    assert sorted(r["NAMES"] for r in rows)[:5] == [f"my_container_{i}" for i in range(1, 6)]
    for row in rows:
        assert row["IMAGE"] == "my-image:1.0" and row["COMMAND"] == '"bash"'
        assert row["PORTS"] == ""
        size = parsers.parse_ps_size(row["SIZE"])
        assert size.writable == 0 and size.virtual == 72.3e6


def test_du_of_container_dirs():
    entries = parsers.parse_du(step_output(E1, "pass", "du -sh /var/lib/docker/containers/*"))
    assert len(entries) == 5
    assert {e.size for e in entries} == {36 * 1024}
    assert all(e.path.startswith("/var/lib/docker/containers/") for e in entries)


@pytest.mark.parametrize("text,value", [("0B", 0), ("4.1kB", 4100), ("72.3MB", 72.3e6), ("1.2GB", 1.2e9)])
def test_docker_sizes(text, value):
    assert parsers.docker_size(text) == pytest.approx(value)


@pytest.mark.parametrize("text,value", [("0", 0), ("36K", 36864), ("1.5M", 1.5 * 1024**2), ("2G", 2 * 1024**3)])
def test_du_sizes(text, value):
    assert parsers.du_size(text) == pytest.approx(value)


@pytest.mark.parametrize("text,value", [("500m", 500 * 1024**2), ("512MB", 512 * 1024**2), ("1g", 1024**3),
                                        ("1.5G", 1.5 * 1024**3), ("4096", 4096), ("64kb", 64 * 1024)])
def test_docker_memory_sizes_are_binary_whatever_the_case(text, value):
    """As `docker run --memory` reads them (lab 15's `--memory 500m` is 500 MiB, lab 17's `-m 512MB` 512 MiB)."""
    assert docker_memory_bytes(text) == value


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        docker_memory_bytes("500 megs")
    with pytest.raises(ValueError):
        parsers.docker_size("lots")
    with pytest.raises(ValueError):
        parsers.parse_ps_size("")


def test_buildkit_build_output_from_stderr():
    calls = json.loads(transcript("e2-trixie-docker26-buildkit", "pass").read_text())["calls"]
    call = next(c for c in calls if "command" in c and '"$LAB_DIR"/Dockerfile-my-base-image' in c["command"])
    out = parsers.parse_build(call["result"]["stdout"] + "\n" + call["result"]["stderr"])
    assert out.builder == "buildkit"
    assert (2, 2, "COPY . /app") in out.steps
    assert out.tags == ["docker.io/library/my-base-image:1.0"]
    assert out.image_id and out.image_id.startswith("sha256:")


def test_containerd_store_pull_ends_each_layer_with_download_complete():
    out = parsers.parse_pull(step_output("e3-trixie-docker26-containerd", "pass", "docker pull "))
    assert len(out.order) == 3
    assert out.with_status("Download complete") == out.order
    assert out.with_status("Pull complete") == []


def test_podman_behind_the_docker_command_is_read_from_its_own_info():
    """`docker info --format '{{json .}}'` through podman-docker prints Podman's own form (host, store,
    version: recorded from engine E6, sid's Podman 5.8 rootless in a container VM), not Docker's."""
    from checker.probes import PROBES, SECTION
    from checker.records import Result

    info = (Path(__file__).parent.parent / "transcripts" / "engine-info" / "e6-podman.json").read_text()
    out = f"{info}\n{SECTION}\npodman version 5.8.6\n{SECTION}\n<unset>\n"
    engine = PROBES["engine"].parse(Result(0, out, "", 0.1), {})
    assert engine.podman and engine.rootless and engine.server_version == "5.8.6" == engine.client_version
    assert engine.storage_driver == "overlay" and engine.cgroup_version == "1" and engine.builder == "buildah"
    assert engine.docker_root_dir == "/home/vagrant/.local/share/containers/storage"
    assert engine.engine_id == "" and not engine.containerd_store and engine.operating_system.startswith("debian")
    assert engine.describe() == "Podman 5.8.6 (rootless), overlay storage driver, through podman-docker"
    assert engine.as_dict()["product"] == "podman"
    from checker.reporters.json_report import _engine  # a report read back (check-lab drift, merge) says so too

    assert _engine(engine.as_dict()).describe() == engine.describe()


ENGINES = ("e1-bookworm-docker20", "e2-trixie-docker26-buildkit", "e3-trixie-docker26-containerd",
           "e4-sid-docker28-buildkit", "e5-sid-docker28-containerd")


def _batched_answer(engine: str, scenario: str, needle: str, last: bool = False):
    """The recorded answer of the first (or the last) batched command containing `needle`."""
    from checker.batch import parse_batch
    from checker.transcript import BATCHED, BOUNDARY

    found = []
    for call in json.loads(transcript(engine, scenario).read_text())["calls"]:
        if "command" in call and needle in call["command"]:
            commands = BATCHED.findall(call["command"])
            boundary = BOUNDARY.search(call["command"]).group(0)
            answers = parse_batch(call["result"]["stdout"], boundary, len(commands))
            found += [a for c, a in zip(commands, answers) if needle in c]
            if found and not last:
                return found[0]
    if not found:
        raise AssertionError(f"no batched command with {needle!r}")
    return found[-1]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_engines_clock_is_read_from_its_info(engine):
    """Observe mode asks the engine's log for changes after the engine's own clock (docker info's SystemTime),
    which on the machine agrees with the machine's clock read in the same batch."""
    from checker.probes import PROBES

    info = _batched_answer(engine, "pass", "docker info --format")
    who = _batched_answer(engine, "pass", "id -u && date +%s")
    since = PROBES["engine"].parse(info, {}).clock
    assert since is not None and re.fullmatch(r"\d{10}\.\d{9}", since)
    assert abs(float(since) - int(who.stdout.split()[1])) < 5


def test_podman_tells_no_clock_so_observe_mode_hashes_instead():
    from checker.probes import PROBES, SECTION
    from checker.records import Result

    info = (Path(__file__).parent.parent / "transcripts" / "engine-info" / "e6-podman.json").read_text()
    out = f"{info}\n{SECTION}\npodman version 5.8.6\n{SECTION}\n<unset>\n"
    assert PROBES["engine"].parse(Result(0, out, "", 0.1), {}).clock is None


@pytest.mark.parametrize("engine", ["e1-bookworm-docker20", "e4-sid-docker28-buildkit"])
def test_the_engines_log_of_a_lab_lists_what_changed_and_not_what_only_ran(engine):
    """Lab 07's run, as the engine logged it (the container_events probe's answer): its pull, tags, containers
    made, started, stopped and removed are changes; a container joining a network, a kill, a stop are not
    (their die and destroy are)."""
    from checker.probes import PROBES

    log = _batched_answer(engine, "pass", "docker events --since")
    changes = PROBES["engine_changes"].parse(log, {"since": "0"})
    assert "image ubuntu:18.04 pull" in changes and "image my-image:1.0 tag" in changes
    for action in ("create", "start", "die", "destroy"):
        assert f"container my_container_1 {action}" in changes
    assert not any(c.split()[-1] in ("kill", "stop", "connect", "disconnect") for c in changes)


def test_a_log_full_to_its_limit_cannot_tell_what_changed():
    from checker.facts import EVENTS_KEPT
    from checker.probes import PROBES
    from checker.records import Result

    log = _batched_answer("e1-bookworm-docker20", "pass", "docker events --since")
    lines = [line for line in log.stdout.splitlines() if line.strip()]
    full = "\n".join((lines * (EVENTS_KEPT // len(lines) + 1))[:EVENTS_KEPT]) + "\n"
    assert PROBES["engine_changes"].parse(Result(0, full, "", 0.1), {"since": "0"}) is None
    assert PROBES["engine_changes"].parse(Result(0, "", "", 0.1), {"since": "0"}) == []


def test_left_as_found_by_log_or_by_hash_and_over_several_machines():
    from checker.records import combined_fingerprint, left_unchanged

    assert left_unchanged({"since": "1.0", "changes": []})
    assert not left_unchanged({"since": "1.0", "changes": ["network x create"]})
    assert not left_unchanged({"since": "1.0", "changes": None}) and not left_unchanged(None)
    assert left_unchanged({"before": "a", "after": "a"}) and not left_unchanged({"before": "a", "after": None})
    both = combined_fingerprint({"m1": {"since": "1.0", "changes": []},
                                 "m2": {"since": "2.0", "changes": ["volume v create"]}})
    assert both == {"since": "m1: 1.0\nm2: 2.0", "changes": ["m2: volume v create"]}
    assert combined_fingerprint({"m1": {"since": "1.0", "changes": []}, "m2": None}) is None
    assert combined_fingerprint({"m1": {"before": "a", "after": "a"}, "m2": {"before": "b", "after": "c"}}) == \
        {"before": "m1: a\nm2: b", "after": "m1: a\nm2: c"}


@pytest.mark.parametrize("engine", ENGINES)
def test_observe_mode_finds_the_engines_api_socket(engine):
    """Observe mode asks for the engine's API socket with docker info; the provisioned machines have curl and the
    login user is in the docker group."""
    from checker.probes import PROBES

    info = _batched_answer(engine, "observe", "docker info --format")
    assert PROBES["engine"].parse(info, {"api": True}).api_socket == "/var/run/docker.sock"
    assert "curl" in PROBES["image"].build({"ref": "x:1"}, PROBES["engine"].parse(info, {"api": True}))[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_api_says_of_the_base_image_what_the_docker_command_said(engine):
    """The base image as observe mode read it through the API and as a lab run read it through `docker`, on the
    same engine (recorded at different times, of a stand-in built again in between: its IDs and sizes differ,
    not its tags, labels, layers or steps but for the digest of the file it adds). That both forms give the same
    facts of the same image is tested live (tests/integration/test_engine_api.py)."""
    from checker.probes import PROBES

    args = {"ref": "ubuntu:18.04"}
    answers = {}
    for kind, path in (("image", "/images/ubuntu:18.04/json"), ("history", "/images/ubuntu:18.04/history")):
        api = PROBES[kind].parse(_batched_answer(engine, "observe", path), args)
        cli = PROBES[kind].parse(_batched_answer(engine, "pass", shlex.join(PROBES[kind].build(args, None)[0]),
                                                 last=True), args)
        answers[kind] = api, cli
    (api, cli), (api_rows, cli_rows) = answers["image"], answers["history"]
    assert (api.tags, api.labels, len(api.layers)) == (cli.tags, cli.labels, len(cli.layers))
    steps = lambda rows: [re.sub("[0-9a-f]{64}", "…", r.created_by) for r in rows]  # noqa: E731
    assert steps(api_rows) == steps(cli_rows) and api_rows
    assert [r.missing_id for r in api_rows] == [r.missing_id for r in cli_rows]
    for row in api_rows + cli_rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", row.created_at)


def test_containers_the_engine_no_longer_has_are_left_out():
    """Lab 07's observe run after the course's `docker run --rm` containers stopped: the engine answers 404
    for each name; the probe finds none, and says no error."""
    from checker.probes import PROBES

    args = {"names": [f"my_container_{i}" for i in range(1, 6)]}
    answer = _batched_answer(E1, "observe", "/containers/my_container_1/json?size=1")
    assert answer.stdout.count("@@check-lab-http@@ 404") == 5
    assert PROBES["containers"].parse(answer, args) == []
