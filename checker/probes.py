"""Probes: the structured data the checker gathers after a step (the lab's commands stay as written).

A probe is a command (argv, quoted by the transport) and a pure function from its Result to a fact.
lab.yaml names them: `after: [{probe: image, ref: "my-image:1.0", as: my_image}]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from checker.facts import Container, Engine, HistoryRow, Image
from checker.transport import Result


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
    return "no such" in result.stderr.lower()


@dataclass(frozen=True)
class ProbeDef:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    build: Callable[[dict, Engine | None], tuple[list[str], bool]]  # -> (argv, needs root)
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


def _disk_build(args: dict, engine: Engine | None) -> tuple[list[str], bool]:
    path = args.get("path") or (engine.docker_root_dir if engine else "/var/lib/docker")
    # -x: stay on the engine's file system; without it du also walks every running container's
    # mounted root file system and counts the image once per container.
    return ["du", "-sx", "--block-size=1", path], True


def _disk_parse(result: Result, args: dict) -> int:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    try:
        return int(result.stdout.split()[0])
    except (IndexError, ValueError):
        raise ProbeError(f"unexpected du output: {result.stdout[:120]!r}") from None


def _engine_parse(result: Result, args: dict) -> Engine:
    if result.exit_status != 0:
        raise ProbeError(result.first_error_line())
    try:
        return Engine.from_info(json.loads(result.stdout))
    except ValueError:
        raise ProbeError("docker info printed no JSON") from None


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
    "engine": ProbeDef("engine", (), (),
                       lambda a, e: (["docker", "info", "--format", "{{json .}}"], False), _engine_parse),
}
