"""Probes: the structured data the checker gathers after a step (the lab's commands stay as written).

A probe is a command (argv, quoted by the transport) and a pure function from its Result to a fact.
lab.yaml names them: `after: [{probe: image, ref: "my-image:1.0", as: my_image}]`.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

from checker.facts import EVENTS_KEPT, Container, ContainerEvent, ContainerEvents, HistoryRow, Image, LayerStore
from checker.parsers import parse_json_lines
from checker.records import Engine, Result, docker_root, says_missing


class ProbeError(Exception):
    pass


def _json_lines(text: str) -> list[dict]:
    return parse_json_lines(text, lambda line: ProbeError(f"unexpected output: {line[:120]}"))


def _not_found(result: Result) -> bool:
    return says_missing(result.stderr)


@dataclass(frozen=True)
class ProbeDef:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    build: Callable[[dict, Engine | None], tuple[list[str], bool] | None]  # -> (argv, needs root); None: skip
    parse: Callable[[Result, dict], Any]
    timeout: float = 120.0

    def check_args(self, args: dict) -> str | None:
        missing = [a for a in self.required if a not in args]
        if missing:
            return f"probe {self.name!r} needs `{missing[0]}`"
        extra = [a for a in args if a not in self.required + self.optional]
        if extra:
            return f"probe {self.name!r} takes no `{extra[0]}`"
        return None


# ------------------------------------------------------------------ the Engine API, where curl may ask it
# Where the engine's answer to the login user (Engine.api_socket) comes through curl instead of `docker`: the same
# JSON, without starting the docker client (a third of the machine's CPU time per question). Each answer is
# followed by a line of HTTP + its status (curl's -w); paths without a version ask the engine's own API version.
HTTP = "@@check-lab-http@@"


def _curl(engine: Engine, *paths: str) -> list[str]:
    return ["curl", "-sS", "--unix-socket", engine.api_socket or "", "-w", f"\\n{HTTP} %{{http_code}}\\n",
            *(f"http://engine{path}" for path in paths)]


def _api(engine: Engine | None) -> bool:
    return engine is not None and bool(engine.api_socket) and not engine.podman


def _ref(ref: Any) -> str:
    return quote(str(ref), safe="/:@")


def _by_api(result: Result) -> bool:
    """Whether curl answered (its status lines), not the docker command."""
    return f"\n{HTTP} " in f"\n{result.stdout}"


def _api_answers(result: Result) -> list[tuple[int, str]]:
    """curl's answers: (HTTP status, body), one per path asked."""
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    answers, body = [], []
    for line in result.stdout.split("\n"):
        if line.startswith(HTTP + " "):
            code = line[len(HTTP) + 1:].strip()
            answers.append((int(code) if code.isdigit() else 0, "\n".join(body).strip()))
            body = []
        elif line or body:
            body.append(line)
    return answers


def _api_answer(result: Result) -> tuple[int, str]:
    """curl's answer to the one path asked."""
    return (_api_answers(result) or [(0, "")])[0]


def _api_json(code: int, body: str) -> Any:
    """The answer's JSON; an error answer raises ProbeError with the engine's message."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        raise ProbeError(f"unexpected answer from the engine (HTTP {code}): {body[:120]}") from None
    if code != 200:
        message = data.get("message") if isinstance(data, dict) else None
        raise ProbeError(str(message or f"the engine answered HTTP {code}"))
    return data


def _api_history_row(row: dict) -> HistoryRow:
    """A row of the API's history as `docker history --human=false --no-trunc` prints it (tabs as spaces, the time
    in RFC 3339)."""
    created = row.get("Created")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)) if isinstance(created, int) else ""
    return HistoryRow.from_json({"ID": row.get("Id", ""), "CreatedBy": str(row.get("CreatedBy", "")).replace("\t", " "),
                                 "Size": str(row.get("Size", 0)), "CreatedAt": when,
                                 "Comment": row.get("Comment", "")})


def _image_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    if _api(engine):
        return _curl(engine, f"/images/{_ref(args['ref'])}/json"), False
    return ["docker", "image", "inspect", "--format", "{{json .}}", str(args["ref"])], False


def _history_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    if _api(engine):
        return _curl(engine, f"/images/{_ref(args['ref'])}/history"), False
    return ["docker", "history", "--human=false", "--no-trunc", "--format", "{{json .}}", str(args["ref"])], False


def _containers_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    if _api(engine):
        return _curl(engine, *(f"/containers/{_ref(n)}/json?size=1" for n in _names(args))), False
    return ["docker", "container", "inspect", "-s", "--format", "{{json .}}", *_names(args)], False


def _image_parse(result: Result, args: dict) -> Image | None:
    if _by_api(result):
        code, body = _api_answer(result)
        return None if code == 404 else Image.from_inspect(_api_json(code, body))
    if result.exit_status != 0:
        if _not_found(result):
            return None
        raise ProbeError(result.first_error_line())
    items = _json_lines(result.stdout)
    return Image.from_inspect(items[0]) if items else None


def _history_parse(result: Result, args: dict) -> list[HistoryRow]:
    if _by_api(result):
        code, body = _api_answer(result)
        return [_api_history_row(row) for row in _api_json(code, body) or []]
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    return [HistoryRow.from_json(row) for row in _json_lines(result.stdout)]


def _containers_parse(result: Result, args: dict) -> list[Container]:
    if _by_api(result):  # a name that is not there: 404
        return [Container.from_inspect(_api_json(code, body)) for code, body in _api_answers(result) if code != 404]
    # Exit 1 with "No such container" for names that do not exist: the others are still printed.
    if result.exit_status != 0 and not _not_found(result):
        raise ProbeError(result.first_error_line())
    return [Container.from_inspect(item) for item in _json_lines(result.stdout)]


CONTAINERD_ROOT = "/var/lib/containerd"
SECTION = "@@check-lab-section@@"


def _disk_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    root = args.get("path") or docker_root(engine)
    # -x: stay on the engine's file systems; without it du also walks every running container's mounted
    # root file system and counts the image once per container. The containerd image store keeps layers
    # and container snapshots under a system containerd's root when there is one.
    extra = ""
    if not args.get("path") and engine is not None and engine.containerd_store:
        extra = f' $([ -d {CONTAINERD_ROOT} ] && echo {CONTAINERD_ROOT})'
    return ["sh", "-c", f"du -sxc --block-size=1 {shlex.quote(root)}{extra}"], True


def _disk_parse(result: Result, args: dict) -> int:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    try:
        return int(result.stdout.strip().splitlines()[-1].split()[0])  # the `total` line
    except (IndexError, ValueError):
        raise ProbeError(f"unexpected du output: {result.stdout[:120]!r}") from None


# With `api`: the engine's API socket where the login user may ask it with curl (the socket of DOCKER_HOST, or the
# default one; none where DOCKER_HOST is not a Unix socket or a docker context is chosen: the docker command
# might then ask another engine).
API_SOCKET = ("s=${DOCKER_HOST:-unix:///var/run/docker.sock}; case $s in unix://*) s=${s#unix://}; "
              "[ -S \"$s\" ] && [ -r \"$s\" ] && [ -w \"$s\" ] && command -v curl >/dev/null && "
              "! grep -qs currentContext \"${DOCKER_CONFIG:-$HOME/.docker}/config.json\" && printf '%s\\n' \"$s\";; "
              "esac; true")


def _engine_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    # `docker info` also lists the client's plugins (buildx); `docker --version` asks no daemon.
    script = (f"docker info --format '{{{{json .}}}}' || exit $?; echo {SECTION}; "
              f"docker --version 2>/dev/null; echo {SECTION}; "
              "printf '%s\\n' \"${DOCKER_BUILDKIT-<unset>}\"")
    if args.get("api"):
        script += f"; echo {SECTION}; {API_SOCKET}"
    return ["sh", "-c", script], False


def _podman_version(text: str) -> str:
    match = re.search(r"podman version (\S+)", text)
    return match.group(1) if match else ""


def _engine_parse(result: Result, args: dict) -> Engine:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    parts = [p.strip() for p in result.stdout.split(SECTION)]
    if len(parts) != (4 if args.get("api") else 3):
        raise ProbeError("unexpected output from docker info")
    socket = parts[3] if len(parts) == 4 and parts[3].startswith("/") else None
    try:
        info = json.loads(parts[0])
    except ValueError:
        raise ProbeError("docker info printed no JSON") from None
    if Engine.is_podman_info(info):  # podman-docker: Podman's own form, and no daemon to answer
        return Engine.from_info(info, client_version=_podman_version(parts[1]))
    if info.get("ServerErrors") or not info.get("ServerVersion"):
        # Without a daemon, `docker info --format` still prints the client's half and exits 0.
        raise ProbeError("; ".join(map(str, info.get("ServerErrors") or ["the Docker daemon did not answer"])))
    version = re.search(r"version (\d+\.\d+\.\d+\S*?),?(?:\s|$)", parts[1])
    plugins = ((info.get("ClientInfo") or {}).get("Plugins") or [])
    buildx = any(isinstance(p, dict) and p.get("Name") == "buildx" and not p.get("Err") for p in plugins)
    env = parts[2] if parts[2] != "<unset>" else None
    return Engine.from_info(info, client_version=version.group(1) if version else "", buildx=buildx,
                            buildkit_env=env, api_socket=socket)


# containerd's socket: a system containerd's, or the one dockerd started itself (no system service).
CTR = ("for a in /run/containerd/containerd.sock /run/docker/containerd/containerd.sock; do "
       "[ -S \"$a\" ] && break; done; c=\"ctr --address $a\"; ")


def _layer_store_build(args: dict, engine: Engine | None) -> tuple[list[str], bool] | None:
    if engine is None or not engine.containerd_store:
        return None  # the classic store's layer directories are what the lab itself lists
    # The overlayfs snapshotter says where its root is.
    script = (CTR + "root=$($c plugins ls -d id==overlayfs | awk '$1 == \"root\" {print $2}'); "
              f"$c -n moby snapshots --snapshotter overlayfs ls && echo {SECTION} && ls \"$root/snapshots\" && "
              f"echo {SECTION} && echo \"$root/snapshots\"")
    return ["sh", "-c", script], True


def _layer_store_parse(result: Result, args: dict) -> LayerStore:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    parts = result.stdout.split(SECTION)
    if len(parts) != 3:
        raise ProbeError("unexpected output from ctr")
    listing, dirs, path = parts
    snapshots = {}
    for line in listing.splitlines()[1:]:  # KEY PARENT KIND
        fields = line.split()
        if len(fields) >= 2:
            snapshots[fields[0]] = fields[-1]
    return LayerStore(snapshots, tuple(d for d in dirs.split() if d), path.strip())


def _container_disk_build(args: dict, engine: Engine | None) -> tuple[list[str], bool] | None:
    # What each container holds on disk: its writable layer, its -init layer, its own directory. The
    # classic store names them in `docker inspect`; the containerd store mounts the container's snapshot
    # (upper: its writable layer; the first lower: its -init layer), which `ctr snapshots mounts` shows.
    # One `docker container inspect` (or one curl) for all the names (a name that is not there is left out), and
    # the engine's root from what `docker info` already said: each docker command costs the machine ~0.03 CPU-s.
    names = " ".join(shlex.quote(n) for n in _names(args))
    root = "root=" + (shlex.quote(engine.docker_root_dir) if engine is not None
                      else "$(docker info -f '{{.DockerRootDir}}')") + "; "
    # Through the API: each container's JSON on a line of its own, its Id first (Docker's order of keys).
    # (curl's status lines match neither expression below, nor does a missing name's answer.)
    by_api = (shlex.join(_curl(engine, *(f"/containers/{_ref(n)}/json" for n in _names(args))))
              + " 2>/dev/null | sed -n ") if _api(engine) else ""
    if engine is not None and engine.containerd_store:
        ids = (by_api + """'s/^{"Id":"\\([0-9a-f]*\\)".*/\\1/p'""" if by_api
               else f"docker container inspect -f '{{{{.Id}}}}' {names} 2>/dev/null")
        script = (CTR + root + ids + " | while read -r id; do "
                  'm=$($c -n moby snapshots mounts /x "$id" 2>/dev/null) || continue; '
                  "up=$(printf '%s' \"$m\" | sed -n 's/.*upperdir=\\([^,]*\\).*/\\1/p'); "
                  "low=$(printf '%s' \"$m\" | sed -n 's/.*lowerdir=\\([^:,]*\\).*/\\1/p'); "
                  'echo "${up%/*}"; echo "${low%/*}"; echo "$root/containers/$id"; '
                  "done | xargs -r du -sxc --block-size=1 | tail -n 1")
        return ["sh", "-c", script], True
    # (A container without an UpperDir: "- ID", as the template's "<no value> ID".)
    dirs = (by_api + """-e 's/^{"Id":"\\([0-9a-f]*\\)".*"UpperDir":"\\([^"]*\\)".*/\\2 \\1/p' -e t """
                     """-e 's/^{"Id":"\\([0-9a-f]*\\)".*/- \\1/p'""" if by_api
            else f"docker container inspect -f '{{{{.GraphDriver.Data.UpperDir}}}} {{{{.Id}}}}' {names} 2>/dev/null")
    script = (root + dirs + " | "
              # (Docker 20.10 answers a name that is not there with an empty line.)
              "while read -r up id; do [ -n \"$id\" ] || continue; "
              "case \"$up\" in /*) ;; *) echo 'no writable-layer directory (not the overlay2 store)' >&2; exit 3;; "
              "esac; "
              'd=${up%/*}; echo "$d"; echo "$d-init"; echo "$root/containers/$id"; '
              "done | xargs -r du -sxc --block-size=1 | tail -n 1")
    return ["sh", "-c", script], True


def _events_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    # What the engine still holds, up to now (without --until, `docker events` would wait for new ones).
    since = str(args.get("since") or 0)
    # --until now to the nanosecond: a whole second would leave out what happened in the current one.
    # (Podman's `events --until` with a time in seconds finds nothing: it ends at once with --stream=false.)
    until = "--stream=false" if engine is not None and engine.podman else '--until "$(date +%s.%N)"'
    script = f"docker events --since {shlex.quote(since)} {until} --format '{{{{json .}}}}'"
    if _api(engine):  # the API's events are the JSON `--format '{{json .}}'` prints
        script = shlex.join(_curl(engine)) + f' "http://engine/events?since={_ref(since)}&until=$(date +%s.%N)"'
    return ["sh", "-c", script], False


# Podman's words for what Docker calls die and destroy.
PODMAN_ACTIONS = {"died": "die", "remove": "destroy"}


def _event_time(item: dict) -> float | None:
    """An event's time in seconds (Docker's timeNano, or its time in whole seconds)."""
    try:
        return int(item.get("timeNano") or 0) / 1e9 or float(item.get("time") or 0) or None
    except (TypeError, ValueError):
        return None


def _event_items(result: Result) -> list[dict]:
    """The engine's log as JSON objects, oldest first (from curl's one answer, or docker's lines)."""
    if _by_api(result):
        code, body = _api_answer(result)
        if code != 200:
            _api_json(code, body)  # raises, with the engine's message
        return _json_lines(body)
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    return _json_lines(result.stdout)


def _events_parse(result: Result, args: dict) -> ContainerEvents:
    wanted = set(_names(args))
    events, lines, oldest = [], 0, None
    for item in _event_items(result):
        lines += 1
        if oldest is None:  # the log is oldest first
            oldest = _event_time(item)
        if item.get("Type") != "container":
            continue
        attrs = (item.get("Actor") or {}).get("Attributes") or {}
        podman = "Actor" not in item and "Name" in item  # Podman's own form: Name, Status, Image, ContainerExitCode
        name = str(item.get("Name", "") if podman else attrs.get("name", ""))
        if name not in wanted:
            continue
        code = item.get("ContainerExitCode") if podman else attrs.get("exitCode")
        action = PODMAN_ACTIONS.get(item.get("Status"), item.get("Status")) if podman else \
            item.get("Action") or item.get("status")
        events.append(ContainerEvent(name, str(action or ""),
                                     str(attrs.get("image") or item.get("from") or item.get("Image") or ""),
                                     _event_time(item) or 0.0,
                                     int(code) if str(code if code is not None else "").lstrip("-").isdigit() else None,
                                     str((item.get("Actor") or {}).get("ID") or item.get("id") or item.get("ID") or "")))
    return ContainerEvents(tuple(events), float(args["since"]) if str(args.get("since") or "").strip() else None,
                           truncated=lines >= EVENTS_KEPT, oldest=oldest)


# What changes the engine's containers (and their states), images, volumes and networks, by the engine's own
# log; not what only reads or runs inside (exec, top, archive-path, export, save, push), health checks, mounts
# of a volume or a container joining a network.
CHANGES = {"container": {"create", "destroy", "rename", "start", "die", "pause", "unpause", "commit"},
           "image": {"create", "pull", "tag", "untag", "delete", "import", "load"},
           "volume": {"create", "destroy"},
           "network": {"create", "destroy", "remove"}}


def _changes_parse(result: Result, args: dict) -> list[str] | None:
    """The changes the engine logged since `since` ("container web create", …), oldest first; None where its log
    (the last EVENTS_KEPT events) may no longer reach back that far."""
    items = _event_items(result)
    if len(items) >= EVENTS_KEPT:
        return None
    changes = []
    for item in items:
        kind, action = str(item.get("Type") or ""), str(item.get("Action") or "").split(":")[0]
        if action in CHANGES.get(kind, ()):
            # (A pull's actor is the reference pulled; a tag's is the image's ID, and its name the new tag.)
            actor = item.get("Actor") or {}
            ident, named = str(actor.get("ID") or ""), (actor.get("Attributes") or {}).get("name")
            name = str(ident if kind == "image" and not ident.startswith("sha256:") else named or ident)
            changes.append(f"{kind} {name[:19] if name.startswith('sha256:') else name} {action}")
    return changes


def _logs_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    # The newest container from that image (what `docker run IMAGE` left, named or not).
    script = (f"c=$(docker ps -a -q --filter ancestor={shlex.quote(str(args['image']))} | head -n 1); "
              '[ -n "$c" ] || exit 3; docker logs "$c"')
    return ["sh", "-c", script], False


def _logs_parse(result: Result, args: dict) -> Result | None:
    if result.exit_status == 3:
        return None  # no such container (any more)
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    return result


def _names(args: dict) -> list[str]:
    names = args["names"]
    return [names] if isinstance(names, str) else [str(n) for n in names]


PROBES: dict[str, ProbeDef] = {
    "image": ProbeDef("image", ("ref",), (), _image_build, _image_parse),
    "history": ProbeDef("history", ("ref",), (), _history_build, _history_parse),
    "containers": ProbeDef("containers", ("names",), (), _containers_build, _containers_parse),
    "disk": ProbeDef("disk", (), ("path",), _disk_build, _disk_parse, timeout=300.0),
    "engine": ProbeDef("engine", (), (), _engine_build, _engine_parse),
    "layer_store": ProbeDef("layer_store", (), (), _layer_store_build, _layer_store_parse),
    "logs": ProbeDef("logs", ("image",), (), _logs_build, _logs_parse),
    "container_events": ProbeDef("container_events", ("names",), ("since",), _events_build, _events_parse),
    "engine_changes": ProbeDef("engine_changes", ("since",), (), _events_build, _changes_parse),
    "container_disk": ProbeDef("container_disk", ("names",), (), _container_disk_build, _disk_parse, timeout=300.0),
}
