"""Checks about the lab machine and its Docker installation (labs 00 and 01)."""

from __future__ import annotations

import re

from checker.checks import check
from checker.facts import Container, Facts, NotApplicable
from checker.records import StepFact, Verdict


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


def _last_line(fact: StepFact) -> str:
    return fact.result.first_error_line() if fact.result else (fact.error or "it did not run")


@check("machine_answers", refs={"system": "system"})
def machine_answers(facts: Facts, system: StepFact) -> Verdict:
    lines = system.parsed or []
    ok = system.status == "passed" and system.result is not None and system.result.exit_status == 0 and len(lines) >= 3
    observed = " · ".join(lines[:3]) if ok else f"no answer: {_last_line(system)}"
    return Verdict(ok, "the machine runs commands over SSH and says what it is (kernel, OS, user)", observed,
                   "bring the machine up (vagrant up) and check `vagrant ssh` works")


@check("engine_running", refs={"engine": "engine"})
def engine_running(facts: Facts, engine: StepFact) -> Verdict:
    data = (engine.parsed or [{}])[0] if engine.parsed else {}
    if facts.podman:
        # Podman has no daemon: `docker version` (podman version) answers with its Client half alone.
        client = (data.get("Client") or {}).get("Version") if isinstance(data, dict) else None
        ok = bool(client) and engine.result is not None and engine.result.exit_status == 0
        observed = (f"Podman {client} answers the docker command (no daemon: each command runs podman)" if ok
                    else f"podman does not answer as root: {_last_line(engine)}")
        return Verdict(ok, "an engine answers the course's docker commands on the machine (docker version, as root)",
                       observed, "install Podman and podman-docker again (vagrant provision)")
    server = (data.get("Server") or {}).get("Version") if isinstance(data, dict) else None
    ok = bool(server) and engine.result is not None and engine.result.exit_status == 0
    observed = f"Docker Engine {server} answers" if ok else f"no Docker Engine answers: {_last_line(engine)}"
    return Verdict(ok, "a Docker Engine runs on the machine and answers (docker version, as root)", observed,
                   "start it: sudo systemctl start docker (or vagrant provision)")


@check("engine_version", refs={"engine": "engine"}, options={"minimum": None})
def engine_version(facts: Facts, engine: StepFact, minimum: str) -> Verdict:
    if (podman := facts.podman):
        raise NotApplicable(f"the engine is Podman {podman.server_version}, not Docker Engine: Docker's version "
                            f"numbers ({minimum}) say nothing about it")
    data = (engine.parsed or [{}])[0] if engine.parsed else {}
    server = str((data.get("Server") or {}).get("Version") or "") if isinstance(data, dict) else ""
    client = str((data.get("Client") or {}).get("Version") or "") if isinstance(data, dict) else ""
    ok = bool(server) and _version(server) >= _version(minimum)
    observed = f"server {server or '?'}, client {client or '?'}"
    return Verdict(ok, f"Docker Engine {minimum} or newer", observed,
                   f"the course needs Docker {minimum} or newer: re-provision the machine")


@check("user_can_use_docker", refs={"as_user": "as-user", "system": "system"})
def user_can_use_docker(facts: Facts, as_user: StepFact, system: StepFact) -> Verdict:
    if (podman := facts.podman):
        # `docker info --format '{{.ServerVersion}}'` names a field of Docker's: Podman's info has none. The
        # run's own `docker info --format '{{json .}}'`, typed as this user, is what answered.
        how = "rootless: its own containers and images, no docker group" if podman.rootless else "as root's Podman"
        return Verdict(True, "the login user runs docker without sudo", f"`docker` runs Podman "
                       f"{podman.server_version} for this user ({how})", "")
    ok = as_user.result is not None and as_user.result.exit_status == 0 and bool(as_user.result.stdout.strip())
    observed = (f"`docker info` works without sudo (server {as_user.result.stdout.strip()})" if ok
                else f"`docker info` fails for this user: {_last_line(as_user)}")
    groups = next((ln for ln in system.parsed or [] if ln.startswith("uid=")), "")
    if groups and not ok:
        observed += f"; {groups}"
    return Verdict(ok, "the login user runs docker without sudo (it is in the docker group)", observed,
                   "add the user to the docker group (vagrant provision does), then log in again")


@check("container_ran", refs={"run": "run"}, options={"says": None})
def container_ran(facts: Facts, run: StepFact, says: str) -> Verdict:
    out = run.result.stdout if run.result else ""
    ok = run.result is not None and run.result.exit_status == 0 and says in out
    observed = f"it printed {out.strip()!r}" if ok else f"it did not run: {_last_line(run)}"
    return Verdict(ok, f"a container starts, prints {says!r} and ends with status 0", observed,
                   "the image must be pullable: check the machine's registry mirror or network")


@check("versions_reported", refs={"version": "version"})
def versions_reported(facts: Facts, version: StepFact) -> Verdict:
    kv = version.parsed or {}
    client, server = kv.get("Client/Version", ""), kv.get("Server/Engine/Version", "")
    client_api, server_api = kv.get("Client/API version", ""), kv.get("Server/Engine/API version", "")
    ok = bool(client and server and client_api and server_api) and \
        _version(client_api) >= _version(server_api.split("(minimum version")[-1].strip(" )") or "0")
    observed = (f"client {client or '?'} (API {client_api or '?'}), server {server or '?'} "
                f"(API {server_api or '?'})")
    return Verdict(ok, "`docker version` shows the client and the server (Engine), with API versions that fit",
                   observed, "no Server section: the engine does not run, or this user may not reach it")


@check("info_matches", refs={"info": "info", "version": "version"})
def info_matches(facts: Facts, info: StepFact, version: StepFact) -> Verdict:
    kv, ver = info.parsed or {}, version.parsed or {}
    server = kv.get("Server/Server Version", "")
    driver = kv.get("Server/Storage Driver", "")
    root = kv.get("Server/Docker Root Dir", "")
    ok = bool(server) and server == ver.get("Server/Engine/Version") and bool(driver) and bool(root)
    observed = f"Server Version {server or '?'}, Storage Driver {driver or '?'}, Docker Root Dir {root or '?'}"
    return Verdict(ok, "`docker info` describes the same engine: its version, storage driver and data folder",
                   observed, "docker info must reach the server: check that the engine runs")


@check("storage_driver_layered", refs={"info": "info"}, options={"drivers": "overlay2,overlayfs"})
def storage_driver_layered(facts: Facts, info: StepFact, drivers: str) -> Verdict:
    driver = (info.parsed or {}).get("Server/Storage Driver", "")
    wanted = [d.strip() for d in drivers.split(",") if d.strip()]
    return Verdict(driver in wanted, f"the storage driver is {' or '.join(wanted)} (layers stored once, shared)",
                   f"Storage Driver: {driver or '?'}",
                   "the labs about layers need overlay2: re-provision the machine (LAB_STORAGE_DRIVER=overlay2)")


@check("container_listed_exited", refs={"ps": "ps-all"}, options={"name": None})
def container_listed_exited(facts: Facts, ps: StepFact, name: str) -> Verdict:
    rows = [r for r in ps.parsed or [] if r.get("NAMES") == name]
    status = rows[0].get("STATUS", "") if rows else ""
    ok = status.startswith("Exited (0)")
    return Verdict(ok, f"`docker ps -a` lists {name}, Exited (0): it ran and ended", f"STATUS: {status or 'not listed'}",
                   "a container that printed its message and ended is listed by `docker ps -a` (not `docker ps`)")


@check("container_removed", refs={"after": "after_rm"}, options={"name": None})
def container_removed(facts: Facts, after: list[Container], name: str) -> Verdict:
    left = [c.name for c in after if c.name == name]
    return Verdict(not left, f"after `docker rm`, {name} is gone", "still there" if left else "gone",
                   f"remove it: docker rm {name}")


@check("pulled_when_missing", refs={"run": "run", "image": "image"}, options={"ref": None})
def pulled_when_missing(facts: Facts, run: StepFact, image, ref: str) -> Verdict:
    """`docker run IMAGE` with the image not on the engine: the daemon says it cannot find it locally, pulls
    it from the registry layer by layer, then runs it. If the image was there already (or in observe mode),
    the claim is judged from the stored image (it came from a registry), and says so."""
    from checker.facts import MissingFact

    if image is None:
        said = run.result.first_error_line() if run.result is not None else "observe mode did not run it"
        if run.result is None:
            raise MissingFact(f"the image {ref} is not on the engine", what_to_do=f"run `docker run {ref}` first")
        return Verdict(False, f"the daemon does not find {ref} locally, pulls it from the registry, then runs it",
                       f"{ref} is not on the engine: the pull failed ({said})",
                       f"the registry (or the machine's registry mirror) must be reachable to pull {ref}")
    from_registry = bool(image.digests)
    stored = f"{ref} is stored with {len(image.layers)} layer(s), from a registry: " + \
        (f"yes ({image.digests[0]})" if from_registry else "no")
    if run.result is None or ref in facts.present_before:
        why = "observe mode did not run it" if run.result is None else "it was on the engine before the run"
        return Verdict(from_registry, f"{ref} came from a registry", f"{stored} (judged from the stored image: {why})",
                       f"run `docker run {ref}` with the engine able to reach the registry")
    text = run.result.stdout + "\n" + run.result.stderr
    if facts.podman:  # Podman says nothing of a local miss: it tries to pull, blob by blob
        missing = re.search(rf"^Trying to pull \S*\b{re.escape(ref)}(:latest)?\.\.\.$", text, re.M) is not None
        layers = re.findall(r"^Copying blob (?:sha256:)?([0-9a-f]{12})", text, re.M)
        said = f"{'it tried' if missing else 'it did not try'} to pull {ref}"
    else:
        missing = re.search(rf"Unable to find image '{re.escape(ref)}(:latest)?' locally", text) is not None
        layers = re.findall(r"^([0-9a-f]{12}): (?:Pull complete|Download complete)", text, re.M)
        said = f"{'it said' if missing else 'it did not say'} it could not find {ref} locally"
    ok = missing and len(set(layers)) >= 1 and from_registry
    observed = f"{said}; {len(set(layers))} layer(s) pulled; {stored}"
    return Verdict(ok, f"the daemon does not find {ref} locally, pulls it from the registry, then runs it",
                   observed, f"the registry (or the machine's registry mirror) must be reachable to pull {ref}")
