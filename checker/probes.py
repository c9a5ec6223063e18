"""Probes: the structured data the checker gathers after a step (the lab's commands stay as written).

A probe is a command (argv, quoted by the transport) and a pure function from its Result to a fact.
lab.yaml names them: `after: [{probe: image, ref: "my-image:1.0", as: my_image}]`.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any, Callable

from checker.facts import EVENTS_KEPT, Container, ContainerEvent, ContainerEvents, HistoryRow, Image, LayerStore
from checker.records import Engine, Result, says_missing


class ProbeError(Exception):
    pass


def _json_lines(result: Result) -> list[dict]:
    out = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            raise ProbeError(f"unexpected output: {line[:120]}") from None
    return out


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


def _image_parse(result: Result, args: dict) -> Image | None:
    if result.exit_status != 0:
        if _not_found(result):
            return None
        raise ProbeError(result.first_error_line())
    items = _json_lines(result)
    return Image.from_inspect(items[0]) if items else None


def _history_parse(result: Result, args: dict) -> list[HistoryRow]:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    return [HistoryRow.from_json(row) for row in _json_lines(result)]


def _containers_parse(result: Result, args: dict) -> list[Container]:
    # Exit 1 with "No such container" for names that do not exist: the others are still printed.
    if result.exit_status != 0 and not _not_found(result):
        raise ProbeError(result.first_error_line())
    return [Container.from_inspect(item) for item in _json_lines(result)]


CONTAINERD_ROOT = "/var/lib/containerd"
SECTION = "@@check-lab-section@@"


def _disk_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    root = args.get("path") or (engine.docker_root_dir if engine else "/var/lib/docker")
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


def _engine_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    # `docker info` also lists the client's plugins (buildx); `docker --version` asks no daemon.
    script = (f"docker info --format '{{{{json .}}}}' || exit $?; echo {SECTION}; "
              f"docker --version 2>/dev/null; echo {SECTION}; "
              "printf '%s\\n' \"${DOCKER_BUILDKIT-<unset>}\"")
    return ["sh", "-c", script], False


def _podman_version(text: str) -> str:
    match = re.search(r"podman version (\S+)", text)
    return match.group(1) if match else ""


def _engine_parse(result: Result, args: dict) -> Engine:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    parts = [p.strip() for p in result.stdout.split(SECTION)]
    if len(parts) != 3:
        raise ProbeError("unexpected output from docker info")
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
                            buildkit_env=env)


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
    # One `docker container inspect` for all the names (a name that is not there is left out), and the
    # engine's root from what `docker info` already said: each docker command costs the machine ~0.03 CPU-s.
    names = " ".join(shlex.quote(n) for n in _names(args))
    root = "root=" + (shlex.quote(engine.docker_root_dir) if engine is not None
                      else "$(docker info -f '{{.DockerRootDir}}')") + "; "
    if engine is not None and engine.containerd_store:
        script = (CTR + root + f"docker container inspect -f '{{{{.Id}}}}' {names} 2>/dev/null | while read -r id; do "
                  'm=$($c -n moby snapshots mounts /x "$id" 2>/dev/null) || continue; '
                  "up=$(printf '%s' \"$m\" | sed -n 's/.*upperdir=\\([^,]*\\).*/\\1/p'); "
                  "low=$(printf '%s' \"$m\" | sed -n 's/.*lowerdir=\\([^:,]*\\).*/\\1/p'); "
                  'echo "${up%/*}"; echo "${low%/*}"; echo "$root/containers/$id"; '
                  "done | xargs -r du -sxc --block-size=1 | tail -n 1")
        return ["sh", "-c", script], True
    script = (root + f"docker container inspect -f '{{{{.GraphDriver.Data.UpperDir}}}} {{{{.Id}}}}' {names} 2>/dev/null | "
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
    return ["sh", "-c", script], False


# Podman's words for what Docker calls die and destroy.
PODMAN_ACTIONS = {"died": "die", "remove": "destroy"}


def _event_time(item: dict) -> float | None:
    """An event's time in seconds (Docker's timeNano, or its time in whole seconds)."""
    try:
        return int(item.get("timeNano") or 0) / 1e9 or float(item.get("time") or 0) or None
    except (TypeError, ValueError):
        return None


def _events_parse(result: Result, args: dict) -> ContainerEvents:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    wanted = set(_names(args))
    events, lines, oldest = [], 0, None
    for item in _json_lines(result):
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
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    items = _json_lines(result)
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
    "image": ProbeDef("image", ("ref",), (),
                      lambda a, e: (["docker", "image", "inspect", "--format", "{{json .}}", str(a["ref"])], False),
                      _image_parse),
    "history": ProbeDef("history", ("ref",), (),
                        lambda a, e: (["docker", "history", "--human=false", "--no-trunc",
                                       "--format", "{{json .}}", str(a["ref"])], False),
                        _history_parse),
    "containers": ProbeDef("containers", ("names",), (),
                           lambda a, e: (["docker", "container", "inspect", "-s", "--format", "{{json .}}",
                                          *_names(a)], False),
                           _containers_parse),
    "disk": ProbeDef("disk", (), ("path",), _disk_build, _disk_parse, timeout=300.0),
    "engine": ProbeDef("engine", (), (), _engine_build, _engine_parse),
    "layer_store": ProbeDef("layer_store", (), (), _layer_store_build, _layer_store_parse),
    "logs": ProbeDef("logs", ("image",), (), _logs_build, _logs_parse),
    "container_events": ProbeDef("container_events", ("names",), ("since",), _events_build, _events_parse),
    "engine_changes": ProbeDef("engine_changes", ("since",), (), _events_build, _changes_parse),
    "container_disk": ProbeDef("container_disk", ("names",), (), _container_disk_build, _disk_parse, timeout=300.0),
}
